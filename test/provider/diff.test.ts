import { DiffKind, diffInputs } from '../../provider/src/provider/diff';
import { UNKNOWN } from '../../provider/src/provider/values';

const rule = (name: string, action = 'allow') => ({ name, action, sources: [{ group: 'web' }] });

describe('detailed diff of old inputs against new inputs', () => {
  test('an unchanged input has no diff', () => {
    const d = diffInputs({ name: 'p', rules: [rule('a')] }, { name: 'p', rules: [rule('a')] });
    expect(d.diffs).toEqual([]);
    expect(d.detailedDiff).toEqual({});
  });

  test('editing one rule reports exactly that rule property path', () => {
    const d = diffInputs({ rules: [rule('a'), rule('b'), rule('c')] }, { rules: [rule('a'), rule('b', 'drop'), rule('c')] });
    expect(d.detailedDiff).toEqual({ 'rules[1].action': DiffKind.UPDATE });
    expect(d.diffs).toEqual(['rules']);
  });

  test('inserting a rule reports only the new rule, not its neighbours', () => {
    const d = diffInputs({ rules: [rule('a'), rule('c')] }, { rules: [rule('a'), rule('b'), rule('c')] });
    expect(d.detailedDiff).toEqual({ 'rules[1]': DiffKind.ADD });
  });

  test('removing a rule reports the removed rule at its old index', () => {
    const d = diffInputs({ rules: [rule('a'), rule('b'), rule('c')] }, { rules: [rule('a'), rule('c')] });
    expect(d.detailedDiff).toEqual({ 'rules[1]': DiffKind.DELETE });
  });

  test('moving a rule reports only the moved rule, because order is evaluation order', () => {
    const d = diffInputs({ rules: [rule('a'), rule('b'), rule('c')] }, { rules: [rule('c'), rule('a'), rule('b')] });
    expect(d.detailedDiff).toEqual({ 'rules[0]': DiffKind.UPDATE });
  });

  test('a change of a replace-on-change property is a replacement', () => {
    const d = diffInputs({ name: 'a', cluster: 'c1' }, { name: 'a', cluster: 'c2' }, { replaceOnChanges: ['cluster'] });
    expect(d.detailedDiff).toEqual({ cluster: DiffKind.UPDATE_REPLACE });
    expect(d.replaces).toEqual(['cluster']);
  });

  test('an unknown new value counts as a change', () => {
    const d = diffInputs({ priority: 10 }, { priority: UNKNOWN });
    expect(d.detailedDiff).toEqual({ priority: DiffKind.UPDATE });
  });

  test('added and deleted properties are ADD and DELETE', () => {
    const d = diffInputs({ description: 'x' }, { logged: true });
    expect(d.detailedDiff).toEqual({ description: DiffKind.DELETE, logged: DiffKind.ADD });
  });

  test('ignoreChanges keeps the old value of an ignored path', () => {
    const d = diffInputs({ labels: { app: 'a', team: 'x' } }, { labels: { app: 'b', team: 'y' } }, { ignoreChanges: ['labels.team'] });
    expect(d.detailedDiff).toEqual({ 'labels.app': DiffKind.UPDATE });
  });

  // The expected keys come from the inputs (top-level properties whose JSON differs), not from the diff's own
  // output, so a diff that drops a changed property from either list fails.
  test.each([
    [{ a: 1, b: { c: [1, 2] }, d: 'x' }, { a: 2, b: { c: [1] }, e: 'y' }],
    [{ name: 'p', rules: [rule('a'), rule('b')], labels: { x: '1' } }, { name: 'p', rules: [rule('b'), rule('a', 'drop')], labels: { x: '1' } }],
    [{ name: 'p', labels: { x: '1' }, priority: 5 }, { name: 'q', labels: { x: '2', y: '3' }, priority: 5 }],
    [{ interfaces: [{ ip: '10.0.0.1' }] }, { interfaces: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }], host: 'h' }],
  ])('diffs and the detailed diff name exactly the changed top-level properties (%#)', (olds, news) => {
    const changed = [...new Set([...Object.keys(olds), ...Object.keys(news)])]
      .filter((k) => JSON.stringify((olds as Record<string, unknown>)[k]) !== JSON.stringify((news as Record<string, unknown>)[k]))
      .sort();
    const d = diffInputs(olds, news);
    expect(d.diffs).toEqual(changed);
    expect([...new Set(Object.keys(d.detailedDiff).map((p) => p.split(/[.[]/)[0]))].sort()).toEqual(changed);
  });
});
