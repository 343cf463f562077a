import type { ConnectivityKind, ConnectivityState } from '../../app/telemetry/telemetry-ports.ts';
import { err, ok, type DomainError, type FieldIssue, type Result } from '../../domain/shared/result.ts';
import { tagKey, type SampleQuality, type TagSample } from '../../domain/signal/sample.ts';
import {
  checkCommandValue,
  dataTypeName,
  integerOf,
  qualityFromCode,
  toSampleValue,
  type CommandMetric,
  type PayloadDecode,
  type SparkplugMetric,
  type SparkplugPayload,
  type ValueConversion,
} from './sparkplug-payload-codec.ts';
import { deviceId, edgeNodeId, invalidSparkplugId, type EdgeMessageType } from './sparkplug-topic.ts';

/**
 * The Primary Host's view of every edge node's Sparkplug session (RELIABILITY.md B.2, H8–H17).
 * Pure: no I/O and no clock of its own. Each call takes `now` (UTC epoch ms from Loom's clock) and
 * returns what to do, in order, as actions; the MQTT adapter performs them and arms one timer at
 * `nextDeadline()` that calls `tick`.
 */

export interface HostSessionOptions {
  /** How long an out-of-order message waits for the missing ones before a rebirth is requested (H9). */
  readonly reorderTimeoutMs: number;
  /** Fewest milliseconds between two rebirth requests to one edge node (H11). */
  readonly rebirthIntervalMs: number;
  /** Whether bad or out-of-sync input requests a rebirth at all (H11 "make this configurable"); default true. */
  readonly requestRebirths?: boolean;
  /**
   * Check seq (H8) and reorder (H9); default true. Off when this instance sees only a share of the
   * DATA (MQTT shared subscription): every instance then sees gaps that are not losses.
   */
  readonly trackSeq?: boolean;
}

export type HostAction =
  | { readonly type: 'samples'; readonly samples: readonly TagSample[] }
  | { readonly type: 'stale'; readonly tagPrefix: string; readonly at: number; readonly reason: string }
  | {
      readonly type: 'state';
      readonly kind: ConnectivityKind;
      readonly id: string;
      readonly state: ConnectivityState;
      readonly detail: string;
    }
  | { readonly type: 'touch'; readonly kind: ConnectivityKind; readonly id: string; readonly at: number }
  | { readonly type: 'count'; readonly kind: ConnectivityKind; readonly id: string; readonly counter: string }
  /**
   * Bad input from a source: add 1 to `counter`, and log it if this (source, code) was not logged
   * before. `code` is finer than the counter (`notProtobuf` counts as `malformed`).
   */
  | {
      readonly type: 'problem';
      readonly kind: ConnectivityKind;
      readonly id: string;
      readonly counter: string;
      readonly code: string;
      readonly detail: string;
    }
  /** Something worth saying once per source that is not an error of this message. */
  | {
      readonly type: 'notice';
      readonly kind: ConnectivityKind;
      readonly id: string;
      readonly code: string;
      readonly detail: string;
    }
  /** Publish NCMD `Node Control/Rebirth` = true to this edge node (H10), counted as `rebirthRequests` once sent. */
  | { readonly type: 'rebirth'; readonly group: string; readonly edgeNode: string; readonly reason: string };

/** An edge message as the session takes it: the parsed topic and the decoded (or refused) payload. */
export interface EdgeMessage {
  readonly type: EdgeMessageType;
  readonly group: string;
  readonly edgeNode: string;
  readonly device: string | null;
  readonly payload: PayloadDecode;
}

interface MetricDef {
  readonly name: string;
  readonly datatype: number;
  readonly alias: number | null;
}

interface DeviceState {
  readonly name: string;
  readonly id: string;
  /** DBIRTH seen in the node's current session and no DDEATH since. */
  born: boolean;
  metrics: Map<string, MetricDef>;
  reported: string | null;
}

interface Pending {
  readonly type: EdgeMessageType;
  readonly device: string | null;
  readonly payload: SparkplugPayload;
  readonly seq: number;
}

interface NodeState {
  readonly group: string;
  readonly edgeNode: string;
  readonly id: string;
  /** `unborn`: no NBIRTH seen since Loom (re)connected; `dead`: NDEATH of the current session applied. */
  phase: 'unborn' | 'online' | 'dead';
  /** bdSeq of the current (or, when dead, the last) session's NBIRTH. */
  bdSeq: bigint | null;
  expectedSeq: number;
  metrics: Map<string, MetricDef>;
  /** Alias → owner (null: the node itself) and metric, current session only; unique across the node (H15). */
  aliases: Map<number, { readonly device: string | null; readonly def: MetricDef }>;
  devices: Map<string, DeviceState>;
  pending: Map<number, Pending>;
  reorderDeadline: number | null;
  /** Why a rebirth is awaited, or null. */
  awaitingRebirth: string | null;
  lastRebirthAt: number | null;
  reported: string | null;
}

/** Error codes of `prepareCommand` (docs/errors.md). */
export type SparkplugCommandCode =
  | 'LOOM_SPARKPLUG_INVALID_TARGET'
  | 'LOOM_SPARKPLUG_NODE_OFFLINE'
  | 'LOOM_SPARKPLUG_NODE_STALE'
  | 'LOOM_SPARKPLUG_DEVICE_OFFLINE'
  | 'LOOM_SPARKPLUG_UNKNOWN_METRIC'
  | 'LOOM_SPARKPLUG_TYPE_MISMATCH';

export interface SparkplugCommandError extends DomainError {
  readonly code: SparkplugCommandCode | 'LOOM_SPARKPLUG_BROKER_DISCONNECTED';
}

export interface WriteTarget {
  readonly group: string;
  readonly edgeNode: string;
  /** A device of the edge node (DCMD); absent or null: the edge node itself (NCMD). */
  readonly device?: string | null;
}

export interface MetricWrite {
  readonly name: string;
  readonly value: number | boolean | string;
}

export interface PreparedCommand {
  readonly group: string;
  readonly edgeNode: string;
  readonly device: string | null;
  readonly metrics: readonly CommandMetric[];
}

const QUALITY_RANK: Readonly<Record<SampleQuality, number>> = { bad: 0, uncertain: 1, good: 2 };
const worse = (a: SampleQuality, b: SampleQuality): SampleQuality =>
  QUALITY_RANK[a] <= QUALITY_RANK[b] ? a : b;

/** Problems after which the BIRTH Loom holds is not to be trusted for this node: ask for a new one (H11). */
const REBIRTH_WORTHY = new Set(['malformed', 'beforeBirth', 'unknownAlias', 'unknownMetric', 'wrongType']);

export class SparkplugHostSession {
  readonly #nodes = new Map<string, NodeState>();
  readonly #lowerCaseIds = new Map<string, string>();
  readonly #withDeadline = new Set<NodeState>();
  readonly #reorderTimeoutMs: number;
  readonly #rebirthIntervalMs: number;
  readonly #requestRebirths: boolean;
  readonly #trackSeq: boolean;

  readonly #tags = new WeakMap<MetricDef, string>();

  constructor(options: HostSessionOptions) {
    this.#reorderTimeoutMs = options.reorderTimeoutMs;
    this.#rebirthIntervalMs = options.rebirthIntervalMs;
    this.#requestRebirths = options.requestRebirths ?? true;
    this.#trackSeq = options.trackSeq ?? true;
  }

  /** One message from an edge node (NBIRTH, NDEATH, NDATA, DBIRTH, DDEATH, DDATA). */
  receive(message: EdgeMessage, now: number): HostAction[] {
    const out: HostAction[] = [];
    const node = this.#node(message.group, message.edgeNode, out);
    out.push({ type: 'touch', kind: 'edge-node', id: node.id, at: now });
    out.push({ type: 'count', kind: 'edge-node', id: node.id, counter: 'messages' });
    const device = message.device === null ? undefined : node.devices.get(message.device);
    if (device !== undefined) {
      out.push({ type: 'touch', kind: 'device', id: device.id, at: now });
      out.push({ type: 'count', kind: 'device', id: device.id, counter: 'messages' });
    }
    const decoded = message.payload;
    if (!decoded.ok) {
      const counter = decoded.problem === 'oversize' ? 'oversize' : 'malformed';
      this.#problem(node, out, counter, decoded.problem, `${message.type}: ${decoded.detail}`);
      // The message is lost to us, and with it possibly a BIRTH or a seq: only a rebirth resyncs.
      this.#requestRebirth(node, `unreadable ${message.type}`, now, out);
      return out;
    }
    if (message.type !== 'NBIRTH' && message.type !== 'NDEATH') this.#repeatRebirthIfDue(node, now, out);
    switch (message.type) {
      case 'NBIRTH':
        this.#nbirth(node, decoded.payload, now, out);
        break;
      case 'NDEATH':
        this.#ndeath(node, decoded.payload, now, out);
        break;
      case 'DBIRTH':
      case 'DDEATH':
      case 'NDATA':
      case 'DDATA':
        this.#sequenced(node, message.type, message.device, decoded.payload, now, out);
        break;
    }
    return out;
  }

  /** Expires reorder waits whose deadline has passed (H9). */
  tick(now: number): HostAction[] {
    const out: HostAction[] = [];
    for (const node of [...this.#withDeadline]) {
      if (node.reorderDeadline !== null && node.reorderDeadline <= now) this.#reorderExpired(node, now, out);
    }
    return out;
  }

  /** When `tick` has work next, or null. */
  nextDeadline(): number | null {
    let next: number | null = null;
    for (const node of this.#withDeadline) {
      if (node.reorderDeadline !== null && (next === null || node.reorderDeadline < next))
        next = node.reorderDeadline;
    }
    return next;
  }

  /**
   * Loom lost its broker connection. With Clean Session nothing is queued for us meanwhile
   * (RELIABILITY.md rule 1), so every live session is unknown from now: its tags go stale and the
   * node needs a new NBIRTH (which a STATE-aware edge sends when it sees our new STATE birth).
   */
  connectionLost(now: number): HostAction[] {
    const out: HostAction[] = [];
    for (const node of this.#nodes.values()) {
      this.#applyPending(node, now, out);
      node.awaitingRebirth = null;
      node.lastRebirthAt = null;
      if (node.phase !== 'online') continue;
      node.phase = 'unborn';
      this.#setNodeState(node, 'stale', 'Loom lost its broker connection; waiting for NBIRTH', out);
      for (const dev of node.devices.values()) {
        dev.born = false;
        this.#setDeviceState(dev, 'stale', 'Loom lost its broker connection; waiting for DBIRTH', out);
      }
      out.push({
        type: 'stale',
        tagPrefix: tagKey.sparkplugNodePrefix(node.group, node.edgeNode),
        at: now,
        reason: 'Loom lost its MQTT broker connection',
      });
    }
    return out;
  }

  /** Edge nodes by state, for `/ready` and status pages. */
  summary(): { online: number; stale: number; offline: number } {
    const s = { online: 0, stale: 0, offline: 0 };
    for (const n of this.#nodes.values()) {
      if (n.phase === 'dead') s.offline++;
      else if (n.phase === 'online' && n.awaitingRebirth === null) s.online++;
      else s.stale++;
    }
    return s;
  }

  /**
   * Checks a write against the current BIRTH (H18): the node (and device) online in this session,
   * every metric known with a compatible value. Metrics with an alias are sent by alias only (H15).
   */
  prepareCommand(
    target: WriteTarget,
    writes: readonly MetricWrite[],
  ): Result<PreparedCommand, SparkplugCommandError> {
    const device = target.device ?? null;
    for (const [what, id] of [
      ['group', target.group],
      ['edgeNode', target.edgeNode],
      ['device', device],
    ] as const) {
      const bad = id === null ? null : invalidSparkplugId(id);
      if (bad !== null) return commandError('LOOM_SPARKPLUG_INVALID_TARGET', `${what} ${bad}`);
    }
    if (writes.length === 0) return commandError('LOOM_SPARKPLUG_INVALID_TARGET', 'no metrics to write');
    const id = edgeNodeId(target.group, target.edgeNode);
    const node = this.#nodes.get(id);
    if (node === undefined || node.phase !== 'online') {
      const why =
        node === undefined ? 'unknown' : node.phase === 'dead' ? 'offline (NDEATH)' : 'without a BIRTH yet';
      return commandError('LOOM_SPARKPLUG_NODE_OFFLINE', `edge node ${id} is ${why}`);
    }
    if (node.awaitingRebirth !== null) {
      return commandError(
        'LOOM_SPARKPLUG_NODE_STALE',
        `edge node ${id} waits for a rebirth (${node.awaitingRebirth}); its metric list is not trusted until then`,
      );
    }
    let metrics = node.metrics;
    if (device !== null) {
      const dev = node.devices.get(device);
      if (dev === undefined || !dev.born) {
        return commandError(
          'LOOM_SPARKPLUG_DEVICE_OFFLINE',
          `device ${deviceId(node.group, node.edgeNode, device)} is offline`,
        );
      }
      metrics = dev.metrics;
    }
    const unknown: FieldIssue[] = [];
    const mismatched: FieldIssue[] = [];
    const out: CommandMetric[] = [];
    writes.forEach((w, i) => {
      const def = metrics.get(w.name);
      if (def === undefined) {
        unknown.push({ path: `metrics[${i}].name`, message: `${w.name} is not in the current BIRTH` });
        return;
      }
      const type = dataTypeName(def.datatype)!;
      const bad = checkCommandValue(def.datatype, w.value);
      if (bad !== null) {
        mismatched.push({ path: `metrics[${i}].value`, message: `${w.name} is ${type}: ${bad}` });
        return;
      }
      out.push(
        def.alias !== null
          ? { alias: def.alias, type, value: w.value }
          : { name: def.name, type, value: w.value },
      );
    });
    if (unknown.length > 0) {
      return commandError('LOOM_SPARKPLUG_UNKNOWN_METRIC', 'metrics not in the current BIRTH', [
        ...unknown,
        ...mismatched,
      ]);
    }
    if (mismatched.length > 0) {
      return commandError(
        'LOOM_SPARKPLUG_TYPE_MISMATCH',
        'values incompatible with the BIRTH datatype',
        mismatched,
      );
    }
    return ok({ group: node.group, edgeNode: node.edgeNode, device, metrics: out });
  }

  #node(group: string, edgeNode: string, out: HostAction[]): NodeState {
    const id = edgeNodeId(group, edgeNode);
    let node = this.#nodes.get(id);
    if (node !== undefined) return node;
    node = {
      group,
      edgeNode,
      id,
      phase: 'unborn',
      bdSeq: null,
      expectedSeq: 0,
      metrics: new Map(),
      aliases: new Map(),
      devices: new Map(),
      pending: new Map(),
      reorderDeadline: null,
      awaitingRebirth: null,
      lastRebirthAt: null,
      reported: null,
    };
    this.#nodes.set(id, node);
    // The entry exists from its first message, before any counter: a node Loom has no BIRTH of is stale.
    this.#setNodeState(node, 'stale', 'no NBIRTH seen yet', out);
    this.#noteCaseCollision('edge-node', id, out);
    return node;
  }

  #noteCaseCollision(kind: ConnectivityKind, id: string, out: HostAction[]): void {
    const lower = `${kind}\u0000${id.toLowerCase()}`;
    const other = this.#lowerCaseIds.get(lower);
    if (other === undefined) this.#lowerCaseIds.set(lower, id);
    else if (other !== id) {
      out.push({
        type: 'notice',
        kind,
        id,
        code: 'caseCollision',
        detail: `${id} and ${other} differ only by case; Sparkplug ids are case-sensitive, but case-insensitive systems downstream will mix them up (H20)`,
      });
    }
  }

  #setNodeState(node: NodeState, state: ConnectivityState, detail: string, out: HostAction[]): void {
    const key = `${state}\u0000${detail}`;
    if (node.reported === key) return;
    node.reported = key;
    out.push({ type: 'state', kind: 'edge-node', id: node.id, state, detail });
  }

  #setDeviceState(dev: DeviceState, state: ConnectivityState, detail: string, out: HostAction[]): void {
    const key = `${state}\u0000${detail}`;
    if (dev.reported === key) return;
    dev.reported = key;
    out.push({ type: 'state', kind: 'device', id: dev.id, state, detail });
  }

  #problem(node: NodeState, out: HostAction[], counter: string, code: string, detail: string): void {
    out.push({ type: 'problem', kind: 'edge-node', id: node.id, counter, code, detail });
  }

  /** H11: at most one request per `rebirthIntervalMs` per node; the node is stale until the NBIRTH. */
  #requestRebirth(node: NodeState, reason: string, now: number, out: HostAction[]): void {
    node.awaitingRebirth = reason;
    if (node.phase !== 'dead') this.#setNodeState(node, 'stale', `waiting for a rebirth: ${reason}`, out);
    if (!this.#requestRebirths) return;
    if (node.lastRebirthAt !== null && now - node.lastRebirthAt < this.#rebirthIntervalMs) return;
    node.lastRebirthAt = now;
    out.push({ type: 'rebirth', group: node.group, edgeNode: node.edgeNode, reason });
  }

  /** NCMD is QoS 0 and may be lost: while a node still talks without having reborn, ask again once per interval. */
  #repeatRebirthIfDue(node: NodeState, now: number, out: HostAction[]): void {
    if (node.awaitingRebirth === null || !this.#requestRebirths || node.lastRebirthAt === null) return;
    if (now - node.lastRebirthAt < this.#rebirthIntervalMs) return;
    node.lastRebirthAt = now;
    out.push({ type: 'rebirth', group: node.group, edgeNode: node.edgeNode, reason: node.awaitingRebirth });
  }

  #setDeadline(node: NodeState, deadline: number | null): void {
    node.reorderDeadline = deadline;
    if (deadline === null) this.#withDeadline.delete(node);
    else this.#withDeadline.add(node);
  }

  /** H8/H9: DBIRTH, NDATA, DDATA and DDEATH carry seq = previous + 1 (255 → 0) within one NBIRTH session. */
  #sequenced(
    node: NodeState,
    type: EdgeMessageType,
    device: string | null,
    payload: SparkplugPayload,
    now: number,
    out: HostAction[],
  ): void {
    if (node.phase !== 'online') {
      this.#problem(node, out, 'beforeBirth', 'beforeBirth', `${type} without a current NBIRTH`);
      this.#requestRebirth(node, `${type} before NBIRTH`, now, out);
      return;
    }
    if (payload.seq === null) {
      this.#problem(node, out, 'malformed', 'noSeq', `${type} without seq`);
      this.#requestRebirth(node, `${type} without seq`, now, out);
      return;
    }
    const seq = payload.seq;
    if (!this.#trackSeq) {
      this.#apply(node, { type, device, payload, seq }, now, out);
      return;
    }
    const distance = (seq - node.expectedSeq + 256) % 256;
    if (distance === 0) {
      this.#apply(node, { type, device, payload, seq }, now, out);
      node.expectedSeq = (seq + 1) % 256;
      this.#drain(node, now, out);
      return;
    }
    this.#problem(
      node,
      out,
      'outOfOrder',
      'outOfOrder',
      `${type} seq ${seq} while seq ${node.expectedSeq} was expected`,
    );
    // Ahead of the expected seq: hold it until the gap fills (H9). Behind it: a duplicate or a straggler
    // of data already passed; drop it, but the timer still runs so a stream that is really out of step
    // ends in a rebirth rather than silently.
    if (distance < 128 && !node.pending.has(seq)) node.pending.set(seq, { type, device, payload, seq });
    if (node.reorderDeadline === null) this.#setDeadline(node, now + this.#reorderTimeoutMs);
    if (this.#reorderTimeoutMs === 0) this.#reorderExpired(node, now, out);
  }

  #drain(node: NodeState, now: number, out: HostAction[]): void {
    for (
      let next = node.pending.get(node.expectedSeq);
      next !== undefined;
      next = node.pending.get(node.expectedSeq)
    ) {
      node.pending.delete(next.seq);
      this.#apply(node, next, now, out);
      node.expectedSeq = (next.seq + 1) % 256;
    }
    if (node.pending.size === 0) this.#setDeadline(node, null);
  }

  /** Applies what waits in the reorder buffer in seq order, gaps or not: it is real data of this session. */
  #applyPending(node: NodeState, now: number, out: HostAction[]): void {
    const start = node.expectedSeq;
    const ordered = [...node.pending.values()].sort(
      (a, b) => ((a.seq - start + 256) % 256) - ((b.seq - start + 256) % 256),
    );
    node.pending.clear();
    this.#setDeadline(node, null);
    for (const p of ordered) {
      this.#apply(node, p, now, out);
      node.expectedSeq = (p.seq + 1) % 256;
    }
  }

  #reorderExpired(node: NodeState, now: number, out: HostAction[]): void {
    const missing = node.expectedSeq;
    this.#applyPending(node, now, out);
    this.#requestRebirth(node, `seq ${missing} did not arrive within ${this.#reorderTimeoutMs} ms`, now, out);
  }

  #apply(node: NodeState, m: Pending, now: number, out: HostAction[]): void {
    switch (m.type) {
      case 'DBIRTH':
        this.#dbirth(node, m.device!, m.payload, now, out);
        return;
      case 'DDEATH':
        this.#ddeath(node, m.device!, m.payload, now, out);
        return;
      case 'NDATA':
      case 'DDATA':
        this.#data(node, m.type, m.device, m.payload, now, out);
        return;
      case 'NBIRTH':
      case 'NDEATH':
        return;
    }
  }

  /**
   * The metric definitions of a BIRTH, or null (problems reported) if it cannot be trusted: a metric
   * without name or known datatype, a name twice, an alias used twice in the node (H15; Tahu's host
   * rebirths on it too), or a value that contradicts its own datatype.
   */
  #birthDefs(
    node: NodeState,
    device: string | null,
    payload: SparkplugPayload,
    out: HostAction[],
  ): Map<string, MetricDef> | null {
    const defs = new Map<string, MetricDef>();
    const aliases = new Set<number>();
    const lowerNames = new Map<string, string>();
    const where = device === null ? 'NBIRTH' : `DBIRTH of ${device}`;
    let good = true;
    const bad = (counter: string, code: string, detail: string) => {
      good = false;
      this.#problem(node, out, counter, code, `${where}: ${detail}`);
    };
    for (const m of payload.metrics) {
      if (m.name === null || m.name === '') {
        bad('malformed', 'birthMetricWithoutName', 'a metric without a name');
        continue;
      }
      if (m.datatype === null || dataTypeName(m.datatype) === null) {
        bad(
          'malformed',
          'birthMetricWithoutDatatype',
          `metric ${m.name} has no known datatype (${m.datatype ?? 'none'})`,
        );
        continue;
      }
      if (defs.has(m.name)) {
        bad('malformed', 'birthMetricTwice', `metric ${m.name} appears twice`);
        continue;
      }
      if (m.alias !== null) {
        const owner = node.aliases.get(m.alias);
        const clashes =
          aliases.has(m.alias) || (device !== null && owner !== undefined && owner.device !== device);
        if (clashes) {
          bad(
            'duplicateAlias',
            'duplicateAlias',
            `alias ${m.alias} of ${m.name} is already used in this edge node`,
          );
          continue;
        }
        aliases.add(m.alias);
      }
      const conv = toSampleValue(m.datatype, m);
      if (!conv.ok && conv.reason === 'wrongType') {
        bad('wrongType', 'wrongType', `metric ${m.name}: ${conv.detail}`);
        continue;
      }
      const lower = m.name.toLowerCase();
      const sibling = lowerNames.get(lower);
      if (sibling !== undefined) {
        out.push({
          type: 'notice',
          kind: 'edge-node',
          id: node.id,
          code: 'metricCaseCollision',
          detail: `${where}: metrics ${sibling} and ${m.name} differ only by case (H20)`,
        });
      } else lowerNames.set(lower, m.name);
      defs.set(m.name, { name: m.name, datatype: m.datatype, alias: m.alias });
    }
    return good ? defs : null;
  }

  #nbirth(node: NodeState, payload: SparkplugPayload, now: number, out: HostAction[]): void {
    // What waits in the reorder buffer belongs to the session that ends here.
    this.#applyPending(node, now, out);
    if (payload.seq === null) {
      this.#problem(node, out, 'malformed', 'noSeq', 'NBIRTH without seq');
      this.#requestRebirth(node, 'NBIRTH without seq', now, out);
      return;
    }
    const bdSeqMetric = payload.metrics.find((m) => m.name === 'bdSeq');
    const bdSeq = bdSeqMetric === undefined ? null : integerOf(bdSeqMetric);
    if (bdSeq === null) {
      this.#problem(node, out, 'malformed', 'noBdSeq', 'NBIRTH without an integer bdSeq metric');
      this.#requestRebirth(node, 'NBIRTH without bdSeq', now, out);
      return;
    }
    const defs = this.#birthDefs(node, null, payload, out);
    if (defs === null) {
      this.#requestRebirth(node, 'NBIRTH refused', now, out);
      return;
    }
    if (node.phase === 'dead' && node.bdSeq === bdSeq) {
      // Tahu's sparkplug-client 3.2.4 builds its Will once and never increments bdSeq (E3): every
      // session of such a node looks alike, so an NDEATH can no longer be told from an older one's.
      out.push({
        type: 'notice',
        kind: 'edge-node',
        id: node.id,
        code: 'bdSeqUnchanged',
        detail: `bdSeq ${bdSeq} did not change between sessions; NDEATH correlation is weaker (a late Will of an earlier session would be taken for the current one)`,
      });
    }
    node.phase = 'online';
    node.bdSeq = bdSeq;
    node.expectedSeq = (payload.seq + 1) % 256;
    node.metrics = defs;
    node.aliases = new Map();
    for (const def of defs.values())
      if (def.alias !== null) node.aliases.set(def.alias, { device: null, def });
    node.awaitingRebirth = null;
    this.#setNodeState(node, 'online', `NBIRTH bdSeq ${bdSeq}`, out);
    for (const dev of node.devices.values()) {
      if (!dev.born) continue;
      // A new NBIRTH starts a new session: devices count again only after their DBIRTH in it.
      dev.born = false;
      dev.metrics = new Map();
      this.#setDeviceState(dev, 'stale', 'new edge node session; waiting for DBIRTH', out);
    }
    this.#emitSamples(node, null, defs, payload, now, out, (m) => m.name !== 'bdSeq');
  }

  #dbirth(node: NodeState, device: string, payload: SparkplugPayload, now: number, out: HostAction[]): void {
    const defs = this.#birthDefs(node, device, payload, out);
    if (defs === null) {
      this.#requestRebirth(node, `DBIRTH of ${device} refused`, now, out);
      return;
    }
    let dev = node.devices.get(device);
    if (dev === undefined) {
      dev = {
        name: device,
        id: deviceId(node.group, node.edgeNode, device),
        born: false,
        metrics: new Map(),
        reported: null,
      };
      node.devices.set(device, dev);
      this.#setDeviceState(dev, 'online', 'DBIRTH', out);
      this.#noteCaseCollision('device', dev.id, out);
      out.push({ type: 'touch', kind: 'device', id: dev.id, at: now });
      out.push({ type: 'count', kind: 'device', id: dev.id, counter: 'messages' });
    }
    for (const [alias, owner] of node.aliases) if (owner.device === device) node.aliases.delete(alias);
    for (const def of defs.values()) if (def.alias !== null) node.aliases.set(def.alias, { device, def });
    dev.born = true;
    dev.metrics = defs;
    this.#setDeviceState(dev, 'online', 'DBIRTH', out);
    this.#emitSamples(node, device, defs, payload, now, out, () => true);
  }

  /** H14: the device goes offline and its tags stale as of the DDEATH's own timestamp. */
  #ddeath(node: NodeState, device: string, payload: SparkplugPayload, now: number, out: HostAction[]): void {
    const dev = node.devices.get(device);
    if (dev === undefined || !dev.born) return;
    dev.born = false;
    this.#setDeviceState(dev, 'offline', 'DDEATH', out);
    out.push({
      type: 'stale',
      tagPrefix: tagKey.sparkplugDevicePrefix(node.group, node.edgeNode, device),
      at: payload.timestamp ?? now,
      reason: 'DDEATH',
    });
  }

  /** H12/H13: only the NDEATH of the current session counts, and only once. */
  #ndeath(node: NodeState, payload: SparkplugPayload, now: number, out: HostAction[]): void {
    const bdSeqMetric = payload.metrics.find((m) => m.name === 'bdSeq');
    const bdSeq = bdSeqMetric === undefined ? null : integerOf(bdSeqMetric);
    if (bdSeq === null) {
      this.#problem(node, out, 'malformed', 'noBdSeq', 'NDEATH without an integer bdSeq metric; ignored');
      return;
    }
    if (node.phase === 'online' && node.bdSeq === bdSeq) {
      this.#applyPending(node, now, out);
      node.phase = 'dead';
      node.awaitingRebirth = null;
      this.#setNodeState(node, 'offline', `NDEATH bdSeq ${bdSeq}`, out);
      for (const dev of node.devices.values()) {
        dev.born = false;
        this.#setDeviceState(dev, 'offline', 'NDEATH of its edge node', out);
      }
      // Loom's clock, not the payload's: a Will is composed at CONNECT time, possibly hours ago (H12).
      out.push({
        type: 'stale',
        tagPrefix: tagKey.sparkplugNodePrefix(node.group, node.edgeNode),
        at: now,
        reason: `NDEATH bdSeq ${bdSeq}`,
      });
      return;
    }
    if (node.phase === 'dead' && node.bdSeq === bdSeq) {
      // NDEATH published, then the broker's copy of the Will: the spec says the second MUST be ignored.
      out.push({ type: 'count', kind: 'edge-node', id: node.id, counter: 'duplicateDeath' });
      return;
    }
    this.#problem(
      node,
      out,
      'staleDeath',
      'staleDeath',
      `NDEATH bdSeq ${bdSeq} does not match the current session (${node.phase === 'online' ? `bdSeq ${node.bdSeq}` : 'none'}); ignored`,
    );
  }

  #data(
    node: NodeState,
    type: 'NDATA' | 'DDATA',
    device: string | null,
    payload: SparkplugPayload,
    now: number,
    out: HostAction[],
  ): void {
    let metrics = node.metrics;
    if (device !== null) {
      const dev = node.devices.get(device);
      if (dev === undefined || !dev.born) {
        this.#problem(node, out, 'beforeBirth', 'beforeBirth', `DDATA of ${device} without a current DBIRTH`);
        this.#requestRebirth(node, `DDATA of ${device} before its DBIRTH`, now, out);
        return;
      }
      metrics = dev.metrics;
    }
    const problems = new Map<string, { counter: string; detail: string }>();
    const note = (counter: string, code: string, detail: string) => {
      if (!problems.has(code))
        problems.set(code, {
          counter,
          detail: `${type}${device === null ? '' : ` of ${device}`}: ${detail}`,
        });
    };
    const samples: TagSample[] = [];
    for (const m of payload.metrics) {
      let def: MetricDef | undefined;
      if (m.alias !== null) {
        const owner = node.aliases.get(m.alias);
        if (owner === undefined || owner.device !== device) {
          note('unknownAlias', 'unknownAlias', `alias ${m.alias} is not in the current BIRTH`);
          continue;
        }
        def = owner.def;
        if (m.name !== null && m.name !== def.name) {
          note(
            'malformed',
            'aliasNameMismatch',
            `alias ${m.alias} is ${def.name} in the BIRTH, ${m.name} here`,
          );
          continue;
        }
      } else if (m.name !== null) {
        def = metrics.get(m.name);
        if (def === undefined) {
          note('unknownMetric', 'unknownMetric', `metric ${m.name} is not in the current BIRTH`);
          continue;
        }
      } else {
        note('malformed', 'metricWithoutId', 'a metric with neither name nor alias');
        continue;
      }
      if (m.datatype !== null && m.datatype !== def.datatype) {
        note(
          'wrongType',
          'wrongType',
          `${def.name} is ${dataTypeName(def.datatype)} in the BIRTH, ${dataTypeName(m.datatype) ?? m.datatype} here`,
        );
        continue;
      }
      const conv = toSampleValue(def.datatype, m);
      if (!conv.ok) {
        if (conv.reason === 'unsupportedType') this.#noteUnsupported(node, def, out);
        else note('wrongType', 'wrongType', `${def.name}: ${conv.detail}`);
        continue;
      }
      samples.push(this.#sample(node, device, def, m, conv, payload, now));
    }
    if (samples.length > 0) out.push({ type: 'samples', samples });
    let rebirth: string | null = null;
    for (const [code, p] of problems) {
      this.#problem(node, out, p.counter, code, p.detail);
      if (rebirth === null && REBIRTH_WORTHY.has(p.counter)) rebirth = p.detail;
    }
    if (rebirth !== null) this.#requestRebirth(node, rebirth, now, out);
  }

  #noteUnsupported(node: NodeState, def: MetricDef, out: HostAction[]): void {
    out.push({
      type: 'notice',
      kind: 'edge-node',
      id: node.id,
      code: 'unsupportedType',
      detail: `metrics of type ${dataTypeName(def.datatype)} (e.g. ${def.name}) are not turned into samples`,
    });
  }

  #emitSamples(
    node: NodeState,
    device: string | null,
    defs: ReadonlyMap<string, MetricDef>,
    payload: SparkplugPayload,
    now: number,
    out: HostAction[],
    include: (m: SparkplugMetric) => boolean,
  ): void {
    const samples: TagSample[] = [];
    for (const m of payload.metrics) {
      if (m.name === null || !include(m)) continue;
      const def = defs.get(m.name)!;
      const conv = toSampleValue(def.datatype, m);
      if (!conv.ok) {
        this.#noteUnsupported(node, def, out);
        continue;
      }
      // A BIRTH reaches every Loom instance (only DATA is shared) and a rebirth repeats values
      // with their timestamps: the store must check these before writing them.
      samples.push({ ...this.#sample(node, device, def, m, conv, payload, now), mayRepeat: true });
    }
    if (samples.length > 0) out.push({ type: 'samples', samples });
  }

  #sample(
    node: NodeState,
    device: string | null,
    def: MetricDef,
    m: SparkplugMetric,
    conv: Extract<ValueConversion, { ok: true }>,
    payload: SparkplugPayload,
    now: number,
  ): TagSample {
    let quality: SampleQuality = m.quality === null ? 'good' : qualityFromCode(m.quality);
    if (conv.quality !== undefined) quality = worse(quality, conv.quality);
    let tag = this.#tags.get(def);
    if (tag === undefined) {
      // One string per metric definition: the pipeline's map lookup then hashes it once, not per sample.
      tag = tagKey.sparkplug(node.group, node.edgeNode, device, def.name);
      this.#tags.set(def, tag);
    }
    return {
      tag,
      value: conv.value,
      quality,
      sourceTs: m.timestamp ?? payload.timestamp ?? now,
      serverTs: now,
      historical: m.isHistorical,
      ...(m.isTransient ? { transient: true } : {}),
    };
  }
}

function commandError(
  code: SparkplugCommandCode,
  message: string,
  issues?: readonly FieldIssue[],
): Result<never, SparkplugCommandError> {
  return err({ code, message, ...(issues ? { issues } : {}) });
}
