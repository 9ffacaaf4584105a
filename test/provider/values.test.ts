import { SIG_KEY, SECRET_SIG, UNKNOWN_SENTINELS, containsUnknowns, formatPath, isUnknown, parsePath, rewrapSecrets, unwrap } from '../../provider/src/provider/values';

describe('special property values', () => {
  test.each([...UNKNOWN_SENTINELS])('sentinel %s is unknown', (s) => {
    expect(isUnknown(s)).toBe(true);
    expect(containsUnknowns({ a: [{ b: s }] })).toBe(true);
  });

  test('an ordinary string is not unknown', () => {
    expect(isUnknown('04da6b54')).toBe(false);
  });

  test('unwrap removes secret wrappers and remembers their paths', () => {
    const { value, secrets } = unwrap({ token: { [SIG_KEY]: SECRET_SIG, value: 's3cr3t' }, list: [{ x: { [SIG_KEY]: SECRET_SIG, value: 1 } }] });
    expect(value).toEqual({ token: 's3cr3t', list: [{ x: 1 }] });
    expect(secrets).toEqual(['token', 'list[0].x']);
  });

  test('rewrapSecrets wraps the remembered paths again', () => {
    const out = rewrapSecrets({ token: 's3cr3t', list: [{ x: 1 }] }, ['token', 'list[0].x']);
    expect(out).toEqual({ token: { [SIG_KEY]: SECRET_SIG, value: 's3cr3t' }, list: [{ x: { [SIG_KEY]: SECRET_SIG, value: 1 } }] });
  });

  test('paths render and parse in Pulumi property-path grammar', () => {
    const segs = ['rules', 2, 'services', 0, 'ports', 1];
    expect(formatPath(segs)).toBe('rules[2].services[0].ports[1]');
    expect(parsePath('rules[2].services[0].ports[1]')).toEqual(segs);
    expect(formatPath(['labels', 'app.kubernetes.io/name'])).toBe('labels["app.kubernetes.io/name"]');
    expect(parsePath('labels["app.kubernetes.io/name"]')).toEqual(['labels', 'app.kubernetes.io/name']);
  });
});
