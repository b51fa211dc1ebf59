import { IJob } from '../tokens';
import { formatBytes, RestoreView } from '../widgets/restoreView';
import { jobBody } from './server';

function job(state: string, extra: Record<string, unknown> = {}): IJob {
  return jobBody(state, extra) as unknown as IJob;
}

describe('RestoreView.phaseText', () => {
  it('names each phase for people, with counts and bytes', () => {
    expect(
      RestoreView.phaseText(
        job('running', { progress: { phase: 'solve', done: 0, total: 1 } })
      )
    ).toBe('Solving the environment…');
    expect(
      RestoreView.phaseText(
        job('running', { progress: { phase: 'verify', done: 4, total: 9 } })
      )
    ).toBe('Checking 4 of 9 packages against the lock…');
    expect(
      RestoreView.phaseText(
        job('running', {
          progress: {
            phase: 'link',
            done: 3,
            total: 12,
            bytes_done: 45e6,
            bytes_total: 120e6,
            downloaded: 2,
            downloading: 5
          }
        })
      )
    ).toBe('Installing 3 of 12 packages, downloading 2 of 5 (45 of 120 MB)…');
    expect(
      RestoreView.phaseText(
        job('running', { progress: { phase: 'pip', done: 0, total: 2 } })
      )
    ).toBe('Installing 2 pip packages…');
    expect(
      RestoreView.phaseText(
        job('running', { progress: { phase: 'register', done: 0, total: 1 } })
      )
    ).toBe('Registering the environment…');
  });

  it('says how long a finished restore took', () => {
    const done = job('succeeded', {
      started: '2024-05-01T12:00:00.000Z',
      finished: '2024-05-01T12:00:04.200Z'
    });
    expect(RestoreView.phaseText(done)).toBe('Done in 4.2 s.');
    const long = job('failed', {
      started: '2024-05-01T12:00:00Z',
      finished: '2024-05-01T12:01:03Z'
    });
    expect(RestoreView.phaseText(long)).toBe('Failed in 1 min 3 s.');
  });

  it('shows no byte count once the downloads are done', () => {
    const text = RestoreView.phaseText(
      job('running', {
        progress: {
          phase: 'link',
          done: 5,
          total: 12,
          bytes_done: 10,
          bytes_total: 10,
          downloaded: 1,
          downloading: 1
        }
      })
    );
    expect(text).toBe('Installing 5 of 12 packages…');
  });
});

describe('formatBytes', () => {
  it('uses the unit of the total', () => {
    expect(formatBytes(45e6, 120e6)).toBe('45 of 120 MB');
    expect(formatBytes(512, 4096)).toBe('0.5 of 4.1 kB');
    expect(formatBytes(1.5e9, 2e9)).toBe('1.5 of 2.0 GB');
  });
});
