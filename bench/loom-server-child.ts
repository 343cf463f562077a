/**
 * A real Loom server (`startServer`, as `loom start` runs it) in a child process of the bench,
 * against the database the bench created. Config as JSON in argv[2]: LOOM_* variables only.
 * With `profile`, pg statements are counted and the V8 CPU profiler and the sampling heap profiler
 * can be started and stopped around the measured window (node:inspector), so preparation does not
 * pollute the profiles.
 */
import { Session } from 'node:inspector/promises';
import pino from 'pino';
import { loadConfig } from '../src/config/config.ts';
import { createLogger } from '../src/main/logger.ts';
import { startServer } from '../src/main/server.ts';
import { serveChild } from './child-process.ts';
import { collectQueryStats } from './query-stats.ts';

const { env, profile } = JSON.parse(process.argv[2] ?? '{}') as {
  env: Record<string, string>;
  profile?: boolean;
};

serveChild(async () => {
  const stats = profile ? collectQueryStats() : undefined;
  const config = loadConfig({ env });
  const logger = config.logLevel === 'silent' ? pino({ level: 'silent' }) : createLogger(config.logLevel);
  const server = await startServer(config, logger, () => undefined);
  let session: Session | undefined;
  return {
    url: server.url,
    stop: () => server.stop(),
    async control(cmd) {
      switch (cmd) {
        case 'query-stats':
          return stats?.get() ?? null;
        case 'query-stats-reset':
          stats?.reset();
          return null;
        case 'profile-start':
          session = new Session();
          session.connect();
          await session.post('Profiler.enable');
          await session.post('Profiler.setSamplingInterval', { interval: 200 });
          await session.post('Profiler.start');
          // Every sampled allocation, also those the garbage collector has freed since: what a
          // request allocates, not what it leaves behind.
          await session.post('HeapProfiler.enable');
          await session.post('HeapProfiler.startSampling', {
            samplingInterval: 16_384,
            includeObjectsCollectedByMinorGC: true,
            includeObjectsCollectedByMajorGC: true,
          });
          return null;
        case 'profile-stop': {
          if (!session) return null;
          const { profile: p } = await session.post('Profiler.stop');
          return p;
        }
        case 'allocations-stop': {
          if (!session) return null;
          const { profile: p } = await session.post('HeapProfiler.stopSampling');
          session.disconnect();
          session = undefined;
          return p;
        }
      }
    },
  };
});
