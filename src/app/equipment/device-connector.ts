import type { CommandValue } from '../../domain/equipment/equipment-command.ts';
import type { SampleQuality, SampleValue } from '../../domain/signal/sample.ts';
import { sourceTagOf, type Signal } from '../../domain/signal/signal.ts';
import type { ConnectorError, ConnectorWrite, EquipmentConnector } from './command-ports.ts';

/**
 * A connector that reads and writes the device itself, by source tag: the Modbus TCP poller and
 * the OPC UA client both offer this (a write answers with the value read back after writing).
 */
export interface DeviceChannel {
  read(tag: string): Promise<
    | {
        readonly ok: true;
        readonly value: SampleValue;
        readonly quality: SampleQuality;
        readonly sourceTs: number | null;
      }
    | { readonly ok: false; readonly code: string; readonly message: string }
  >;
  write(
    tag: string,
    value: CommandValue,
  ): Promise<
    | { readonly ok: true; readonly readBack: SampleValue }
    | { readonly ok: false; readonly code: string; readonly message: string }
  >;
}

/**
 * What a connector's error code says about the write: the peer is not connected, or it did not
 * answer in time (the write may have landed), or it refused. Codes follow `LOOM_<AREA>_<REASON>`.
 */
export function classifyConnectorCode(code: string): ConnectorError['kind'] {
  if (/_(DISCONNECTED|NOT_CONNECTED|OFFLINE|NO_SESSION|SESSION_CLOSED)$/.test(code)) return 'disconnected';
  if (/_TIMEOUT$/.test(code)) return 'unconfirmed';
  return 'failed';
}

export function deviceConnector(
  channel: DeviceChannel,
  options: { readonly check?: (signal: Signal, value: CommandValue) => string | null } = {},
): EquipmentConnector {
  const error = (r: { code: string; message: string }): ConnectorError => ({
    code: r.code,
    message: r.message,
    kind: classifyConnectorCode(r.code),
  });
  return {
    check: (signal, value) => options.check?.(signal, value) ?? null,
    async read(signal) {
      const r = await channel.read(sourceTagOf(signal.source));
      if (!r.ok) return { ok: false, error: error(r) };
      return { ok: true, value: { value: r.value, quality: r.quality, at: r.sourceTs, via: 'device' } };
    },
    async write(writes) {
      const results: ConnectorWrite[] = [];
      for (const w of writes) {
        const r = await channel.write(sourceTagOf(w.signal.source), w.value);
        if (!r.ok) {
          results.push({ ok: false, error: error(r) });
          break;
        }
        results.push({ ok: true, readBack: r.readBack, via: 'device' });
      }
      return results;
    },
  };
}
