import { PropertyMap, PropertyValue, isObject, isUnknown, joinPath, parsePath } from './values';

/** The kinds of pulumirpc.PropertyDiff. */
export enum DiffKind {
  ADD = 0,
  ADD_REPLACE = 1,
  DELETE = 2,
  DELETE_REPLACE = 3,
  UPDATE = 4,
  UPDATE_REPLACE = 5,
}

export interface DetailedDiff {
  /** Property path (`rules[1].action`) → kind. */
  readonly detailedDiff: Record<string, DiffKind>;
  /** Top-level keys that changed. */
  readonly diffs: string[];
  /** Top-level keys whose change forces a replacement. */
  readonly replaces: string[];
}

const REPLACE: Record<number, DiffKind> = {
  [DiffKind.ADD]: DiffKind.ADD_REPLACE,
  [DiffKind.DELETE]: DiffKind.DELETE_REPLACE,
  [DiffKind.UPDATE]: DiffKind.UPDATE_REPLACE,
};

/**
 * Diffs old inputs against new inputs at property-path granularity. Arrays of objects that carry a
 * unique `name` (firewall rules, listeners, interfaces) are matched by name, so inserting, editing
 * or reordering one element reports only that element — never a rewrite of its neighbours.
 */
export function diffInputs(
  olds: PropertyMap,
  news: PropertyMap,
  opts: { replaceOnChanges?: readonly string[]; ignoreChanges?: readonly string[] } = {},
): DetailedDiff {
  const effectiveNews = applyIgnoreChanges(olds, news, opts.ignoreChanges ?? []);
  const entries: [string, DiffKind][] = [];
  diffValue(olds, effectiveNews, '', entries);
  const replaceKeys = new Set(opts.replaceOnChanges ?? []);
  const detailedDiff: Record<string, DiffKind> = {};
  const diffs = new Set<string>();
  const replaces = new Set<string>();
  for (const [path, kind] of entries) {
    const top = String(parsePath(path)[0]);
    let k = kind;
    if (replaceKeys.has(top)) {
      k = REPLACE[kind] ?? kind;
      replaces.add(top);
    }
    detailedDiff[path] = k;
    diffs.add(top);
  }
  return { detailedDiff, diffs: [...diffs].sort(), replaces: [...replaces].sort() };
}

function diffValue(old: PropertyValue | undefined, nu: PropertyValue | undefined, path: string, out: [string, DiffKind][]): void {
  if (old === undefined && nu === undefined) return;
  if (old === undefined) { out.push([path, DiffKind.ADD]); return; }
  if (nu === undefined) { out.push([path, DiffKind.DELETE]); return; }
  if (isUnknown(nu)) { out.push([path, DiffKind.UPDATE]); return; }
  if (isObject(old) && isObject(nu)) {
    const keys = new Set([...Object.keys(old), ...Object.keys(nu)]);
    for (const k of [...keys].sort()) diffValue(old[k], nu[k], path === '' ? joinPath('', k) : joinPath(path, k), out);
    return;
  }
  if (Array.isArray(old) && Array.isArray(nu)) {
    if (namedElements(old) && namedElements(nu)) diffNamedArrays(old, nu, path, out);
    else {
      const n = Math.max(old.length, nu.length);
      for (let i = 0; i < n; i++) diffValue(old[i], nu[i], joinPath(path, i), out);
    }
    return;
  }
  if (JSON.stringify(old) !== JSON.stringify(nu)) out.push([path, DiffKind.UPDATE]);
}

function namedElements(a: PropertyValue[]): a is { [key: string]: PropertyValue; name: string }[] {
  if (a.length === 0) return true;
  const names = new Set<string>();
  for (const e of a) {
    if (!isObject(e) || typeof e.name !== 'string' || names.has(e.name)) return false;
    names.add(e.name);
  }
  return true;
}

function diffNamedArrays(
  old: { [key: string]: PropertyValue; name: string }[],
  nu: { [key: string]: PropertyValue; name: string }[],
  path: string,
  out: [string, DiffKind][],
): void {
  const oldByName = new Map(old.map((e, i) => [e.name, { e, i }]));
  const newNames = new Set(nu.map((e) => e.name));
  // Elements kept in the same relative order are those on the longest common subsequence of names;
  // the others moved, which changes evaluation order and is shown as an update of that element.
  const kept = lcs(old.map((e) => e.name).filter((n) => newNames.has(n)), nu.map((e) => e.name).filter((n) => oldByName.has(n)));
  nu.forEach((e, i) => {
    const prev = oldByName.get(e.name);
    const p = joinPath(path, i);
    if (!prev) out.push([p, DiffKind.ADD]);
    else if (!kept.has(e.name)) out.push([p, DiffKind.UPDATE]);
    else diffValue(prev.e, e, p, out);
  });
  old.forEach((e, i) => {
    if (!newNames.has(e.name)) out.push([joinPath(path, i), DiffKind.DELETE]);
  });
}

function lcs(a: string[], b: string[]): Set<string> {
  const dp: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      dp[i][j] = a[i] === b[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
    }
  }
  const keep = new Set<string>();
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) { keep.add(a[i]); i++; j++; }
    else if (dp[i + 1][j] >= dp[i][j + 1]) i++;
    else j++;
  }
  return keep;
}

/** Copies the old value into the new inputs at every ignored path, as the engine does for Check. */
export function applyIgnoreChanges(olds: PropertyMap, news: PropertyMap, ignore: readonly string[]): PropertyMap {
  if (ignore.length === 0) return news;
  const out: PropertyMap = structuredClone(news);
  for (const path of ignore) {
    const segs = parsePath(path);
    if (segs.length === 0) continue;
    let src: PropertyValue | undefined = olds;
    let dst: PropertyValue | undefined = out;
    for (const s of segs.slice(0, -1)) {
      src = getChild(src, s);
      dst = getChild(dst, s);
    }
    const last = segs[segs.length - 1];
    const oldValue = getChild(src, last);
    if (isObject(dst) && typeof last === 'string') {
      if (oldValue === undefined) delete dst[last];
      else dst[last] = structuredClone(oldValue);
    } else if (Array.isArray(dst) && typeof last === 'number' && oldValue !== undefined) {
      dst[last] = structuredClone(oldValue);
    }
  }
  return out;
}

function getChild(v: PropertyValue | undefined, seg: string | number): PropertyValue | undefined {
  if (Array.isArray(v) && typeof seg === 'number') return v[seg];
  if (isObject(v) && typeof seg === 'string') return v[seg];
  return undefined;
}
