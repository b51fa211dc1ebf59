import { freeName } from '../widgets/dialogs';

describe('freeName', () => {
  it('keeps a free name and suggests another for a taken one', () => {
    const taken = new Set(['analysis', 'analysis-restored']);
    expect(freeName('fresh', taken)).toBe('fresh');
    expect(freeName(null, taken)).toBeNull();
    expect(freeName('analysis', taken)).toBe('analysis-restored-2');
    expect(freeName('analysis-restored', new Set(['analysis-restored']))).toBe(
      'analysis-restored-restored'
    );
  });
});
