/**
 * The ingest bench's Sparkplug edge nodes, in a process of their own: one MQTT connection per
 * edge node (each with its NDEATH Will), NBIRTH and DBIRTHs first, then pre-encoded DDATA at
 * QoS 0, as fast as the connections take them or at a set rate. A rebirth request (NCMD
 * `Node Control/Rebirth`) is answered with new births, seq restarting at 0 (Sparkplug 3.0 §6.4.12).
 * Config as JSON in argv[2]: {@link PublisherConfig}.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { serveIngestChild } from './ingest-child.ts';
import {
  dbirth,
  ddataRing,
  isRebirthRequest,
  METRICS_PER_DEVICE,
  nbirth,
  ndeath,
  patchTimestamps,
  RandomWalks,
  topic,
  type BenchEdgeNode,
  type BenchPlant,
  type PatchableMessage,
} from './ingest-sparkplug.ts';

export interface PublisherConfig {
  readonly url: string;
  readonly plant: BenchPlant;
  readonly seed: number;
  /** Wait (up to `stateWaitMs`) for this Primary Host's STATE online before the births. */
  readonly primaryHostId?: string;
  readonly stateWaitMs?: number;
}

export interface PublisherStats {
  /** DDATA messages handed to the sockets since start. */
  readonly sent: number;
  readonly births: number;
  readonly rebirthRequests: number;
  /** Whether the Primary Host's STATE online was seen before the births (null: not asked for). */
  readonly stateOnline: boolean | null;
  /** How far a device's timestamps ran ahead of the wall clock (more than 1,000 messages/s per device). */
  readonly maxLeadMs: number;
  readonly errors: readonly string[];
}

/**
 * DDATA messages of one node handed to mqtt.js but not yet written out. Ring slots are patched in
 * place, so this must stay well below the ring's 256.
 */
const IN_FLIGHT_PER_NODE = 64;

interface NodeState {
  readonly node: BenchEdgeNode;
  readonly client: MqttClient;
  readonly ring: PatchableMessage[];
  seq: number;
  inFlight: number;
  readonly bdSeq: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as PublisherConfig;
const { plant } = config;
const deviceCount = plant.nodes.reduce((n, node) => n + node.devices.length, 0);
const walks = new RandomWalks(deviceCount * METRICS_PER_DEVICE, config.seed);
const lastTs = new Float64Array(deviceCount);
const errors: string[] = [];
const nodes: NodeState[] = [];
let sent = 0;
let births = 0;
let rebirthRequests = 0;
let stateOnline: boolean | null = null;
let maxLeadMs = 0;

let mode: { rate: number | null; startedAt: number; sentAtStart: number } | null = null;
let pumpScheduled = false;
let rr = 0;

const clockFor = (index: number): number => {
  const now = Date.now();
  const ts = Math.max(now, lastTs[index]! + 1);
  lastTs[index] = ts;
  if (ts - now > maxLeadMs) maxLeadMs = ts - now;
  return ts;
};

function publishBirths(ns: NodeState): void {
  const ts = Date.now();
  ns.client.publish(topic(plant.group, 'NBIRTH', ns.node.id), nbirth(ns.bdSeq, ts), { qos: 0 });
  let seq = 1;
  for (const device of ns.node.devices) {
    ns.client.publish(
      topic(plant.group, 'DBIRTH', ns.node.id, device.id),
      dbirth(device, walks, seq, clockFor(device.index)),
      { qos: 0 },
    );
    seq = (seq + 1) & 255;
  }
  ns.seq = seq;
  births++;
}

function sendOne(ns: NodeState): void {
  const msg = ns.ring[ns.seq]!;
  ns.seq = (ns.seq + 1) & 255;
  patchTimestamps(msg, clockFor(msg.device.index));
  ns.inFlight++;
  sent++;
  ns.client.publish(msg.topic, msg.payload, { qos: 0 }, () => {
    ns.inFlight--;
    schedulePump();
  });
}

function schedulePump(): void {
  if (pumpScheduled || mode === null) return;
  pumpScheduled = true;
  setImmediate(pump);
}

/** Sends what is due, round-robin over the nodes, yielding to the event loop every 256 messages. */
function pump(): void {
  pumpScheduled = false;
  if (mode === null) return;
  const due =
    mode.rate === null
      ? Infinity
      : Math.floor((mode.rate * (performance.now() - mode.startedAt)) / 1000) - (sent - mode.sentAtStart);
  let budget = Math.min(due, 256);
  let blocked = 0;
  while (budget > 0 && blocked < nodes.length) {
    const ns = nodes[rr++ % nodes.length]!;
    if (ns.inFlight >= IN_FLIGHT_PER_NODE) {
      blocked++;
      continue;
    }
    blocked = 0;
    sendOne(ns);
    budget--;
  }
  // Blocked: a write callback reschedules. Paced and nothing due: the ticker does.
  if (blocked < nodes.length && (mode.rate === null || due > 256)) schedulePump();
}

setInterval(schedulePump, 5).unref();

async function connect(node: BenchEdgeNode): Promise<NodeState> {
  const bdSeq = 0;
  const client = mqtt.connect(config.url, {
    clientId: `${plant.group}-${node.id}`,
    clean: true,
    keepalive: 30,
    reconnectPeriod: 0,
    protocolVersion: 4,
    will: {
      topic: topic(plant.group, 'NDEATH', node.id),
      payload: ndeath(bdSeq, Date.now()),
      qos: 1,
      retain: false,
    },
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  client.on('error', (e) => errors.push(`${node.id}: ${e.message}`));
  client.on('close', () => {
    if (mode !== null) errors.push(`${node.id}: connection closed`);
  });
  const ns: NodeState = { node, client, ring: ddataRing(plant, node, walks), seq: 0, inFlight: 0, bdSeq };
  const ncmd = topic(plant.group, 'NCMD', node.id);
  client.on('message', (t, payload) => {
    if (t === ncmd && isRebirthRequest(payload)) {
      rebirthRequests++;
      publishBirths(ns);
    }
  });
  await client.subscribeAsync(ncmd, { qos: 0 });
  return ns;
}

async function waitForState(client: MqttClient, hostId: string, ms: number): Promise<boolean> {
  const stateTopic = `spBv1.0/STATE/${hostId}`;
  const online = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    client.on('message', (t, payload) => {
      if (t !== stateTopic) return;
      try {
        if ((JSON.parse(payload.toString()) as { online?: unknown }).online === true) {
          clearTimeout(timer);
          resolve(true);
        }
      } catch {
        // A STATE payload that is not Sparkplug 3.0 JSON is not an online host.
      }
    });
  });
  await client.subscribeAsync(stateTopic, { qos: 1 });
  return online;
}

const init = (async () => {
  for (const node of plant.nodes) nodes.push(await connect(node));
  if (config.primaryHostId !== undefined) {
    stateOnline = await waitForState(nodes[0]!.client, config.primaryHostId, config.stateWaitMs ?? 15_000);
  }
  for (const ns of nodes) publishBirths(ns);
})();

const stats = (): PublisherStats => ({ sent, births, rebirthRequests, stateOnline, maxLeadMs, errors });

serveIngestChild(
  init,
  (body) => {
    switch (body.type) {
      case 'run': {
        const rate = body.rate as number | null;
        mode = { rate, startedAt: performance.now(), sentAtStart: sent };
        schedulePump();
        return stats();
      }
      case 'pause':
        mode = null;
        return stats();
      case 'stats':
        return stats();
      default:
        throw new Error(`unknown request ${body.type}`);
    }
  },
  async () => {
    mode = null;
    await Promise.all(
      nodes.map(async (ns) => {
        await ns.client.publishAsync(topic(plant.group, 'NDEATH', ns.node.id), ndeath(ns.bdSeq, Date.now()), {
          qos: 0,
        });
        await ns.client.endAsync();
      }),
    );
  },
);
