/**
 * Sparkplug B 3.0 topic names (§4.1): `spBv1.0/<group>/<MSG>/<edge node>[/<device>]` and the host
 * state topic `spBv1.0/STATE/<host id>`. Pure: a topic is checked before anything looks at its
 * payload, and a topic that breaks the rules is a value, not an exception.
 */

export const SPARKPLUG_NAMESPACE = 'spBv1.0';

/** What an edge node publishes. */
export type EdgeMessageType = 'NBIRTH' | 'NDEATH' | 'NDATA' | 'DBIRTH' | 'DDEATH' | 'DDATA';
/** What a host application publishes to an edge node. */
export type CommandMessageType = 'NCMD' | 'DCMD';

export type SparkplugTopic =
  | {
      readonly kind: 'edge';
      readonly type: EdgeMessageType;
      readonly group: string;
      readonly edgeNode: string;
      /** Set exactly for DBIRTH, DDEATH and DDATA. */
      readonly device: string | null;
    }
  | {
      readonly kind: 'command';
      readonly type: CommandMessageType;
      readonly group: string;
      readonly edgeNode: string;
      readonly device: string | null;
    }
  | { readonly kind: 'state'; readonly hostId: string };

/**
 * Why a topic is refused. `not-sparkplug`: outside the namespace; `unknown-message-type`: a verb
 * the spec does not define; `wrong-shape`: too few or too many levels for its verb (a device id
 * with a `/` in it ends up here); `invalid-id`: an empty id or one with `+`, `#` or NUL (H20).
 */
export type TopicProblemReason = 'not-sparkplug' | 'unknown-message-type' | 'wrong-shape' | 'invalid-id';

export type TopicParse =
  | { readonly ok: true; readonly topic: SparkplugTopic }
  | { readonly ok: false; readonly reason: TopicProblemReason; readonly detail: string };

const NODE_TYPES = new Set<string>(['NBIRTH', 'NDEATH', 'NDATA', 'NCMD']);
const DEVICE_TYPES = new Set<string>(['DBIRTH', 'DDEATH', 'DDATA', 'DCMD']);

/**
 * Why an id is not a valid Sparkplug group, edge node, device or host id, or null if it is.
 * Sparkplug 3.0 §4.1.1: UTF-8 without the MQTT wildcards `+` and `#` and without the level
 * separator `/`; MQTT forbids U+0000 in any topic. An empty level would make the topic ambiguous.
 */
export function invalidSparkplugId(id: string): string | null {
  if (id.length === 0) return 'is empty';
  if (/[+#/]/.test(id)) return 'contains +, # or /';
  if (id.includes('\u0000')) return 'contains U+0000';
  return null;
}

function refuse(reason: TopicProblemReason, detail: string): TopicParse {
  return { ok: false, reason, detail };
}

export function parseSparkplugTopic(topic: string): TopicParse {
  const levels = topic.split('/');
  if (levels[0] !== SPARKPLUG_NAMESPACE)
    return refuse('not-sparkplug', `not in the ${SPARKPLUG_NAMESPACE} namespace`);
  if (levels[1] === 'STATE') {
    // `STATE` in the group position is reserved for host state (§4.2.3), so `spBv1.0/STATE/NDATA/x`
    // is a malformed state topic, not the data of a group named STATE.
    if (levels.length !== 3) return refuse('wrong-shape', 'a STATE topic has exactly one level after STATE');
    const hostId = levels[2]!;
    const bad = invalidSparkplugId(hostId);
    if (bad !== null) return refuse('invalid-id', `host id ${bad}`);
    return { ok: true, topic: { kind: 'state', hostId } };
  }
  if (levels.length < 4) return refuse('wrong-shape', 'fewer than 4 levels');
  const type = levels[2]!;
  const isNode = NODE_TYPES.has(type);
  if (!isNode && !DEVICE_TYPES.has(type)) return refuse('unknown-message-type', `unknown message type`);
  const expected = isNode ? 4 : 5;
  if (levels.length !== expected) {
    return refuse('wrong-shape', `${type} needs ${expected} levels, got ${levels.length}`);
  }
  const group = levels[1]!;
  const edgeNode = levels[3]!;
  const device = isNode ? null : levels[4]!;
  for (const [what, id] of [
    ['group id', group],
    ['edge node id', edgeNode],
    ['device id', device],
  ] as const) {
    if (id === null) continue;
    const bad = invalidSparkplugId(id);
    if (bad !== null) return refuse('invalid-id', `${what} ${bad}`);
  }
  if (type === 'NCMD' || type === 'DCMD') {
    return { ok: true, topic: { kind: 'command', type, group, edgeNode, device } };
  }
  return { ok: true, topic: { kind: 'edge', type: type as EdgeMessageType, group, edgeNode, device } };
}

export function stateTopic(hostId: string): string {
  return `${SPARKPLUG_NAMESPACE}/STATE/${hostId}`;
}

export function commandTopic(group: string, edgeNode: string, device: string | null): string {
  return device === null
    ? `${SPARKPLUG_NAMESPACE}/${group}/NCMD/${edgeNode}`
    : `${SPARKPLUG_NAMESPACE}/${group}/DCMD/${edgeNode}/${device}`;
}

/** The edge node's id in connectivity reports and logs: `group/edge`. */
export const edgeNodeId = (group: string, edgeNode: string): string => `${group}/${edgeNode}`;
/** A device's id in connectivity reports and logs: `group/edge/device`. */
export const deviceId = (group: string, edgeNode: string, device: string): string =>
  `${group}/${edgeNode}/${device}`;
