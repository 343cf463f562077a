/**
 * Runs the ERP stand-in on its own: `node --import tsx src/sim/erp-standin-main.ts --port 8090
 * [--token T]`. Loom delivers to `http://127.0.0.1:8090/performance` (LOOM_ERP_OUTBOUND_URL); the
 * control API is described in erp-standin.ts. Stops on SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { startErpStandIn } from './erp-standin.ts';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '8090' }, host: { type: 'string' }, token: { type: 'string' } },
});
const standIn = await startErpStandIn({
  port: Number(values.port),
  ...(values.host ? { host: values.host } : {}),
  ...(values.token ? { token: values.token } : {}),
});
process.stdout.write(`ERP stand-in listening on ${standIn.url} (deliver to ${standIn.performanceUrl})\n`);
const stop = () => {
  void standIn.stop().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
