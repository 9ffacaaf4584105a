// cytoscape-svg ships no types: it registers `cy.svg(options)` as a Cytoscape extension.
declare module 'cytoscape-svg' {
  const ext: cytoscape.Ext;
  export default ext;
}
declare namespace cytoscape {
  interface Core {
    svg(options?: { full?: boolean; scale?: number; bg?: string }): string;
  }
}
