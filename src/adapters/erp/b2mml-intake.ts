import { randomUUID } from 'node:crypto';
import type { Principal } from '../../app/auth/auth-service.ts';
import { contentHash } from '../../app/auth/tokens.ts';
import { acceptOrders, type AcceptedOrders } from '../../app/erp/accept-orders.ts';
import type { ErpDeps } from '../../app/erp/erp-ports.ts';
import { applyInboundMessage, type InboundOutcome } from '../../app/erp/inbound-message.ts';
import { receiveLots } from '../../app/erp/receive-lots.ts';
import { syncMaterialDefinitions } from '../../app/erp/sync-material-definitions.ts';
import type { CommandContext } from '../../app/execution/execution-deps.ts';
import type { Tx } from '../../app/ports.ts';
import type { Actor } from '../../domain/auth/roles.ts';
import type { Clock } from '../../domain/shared/clock.ts';
import { ok, type DomainError, type FieldIssue, type Result } from '../../domain/shared/result.ts';
import {
  applicationAreaOf,
  INBOUND_SCHEMA,
  isInboundVerb,
  readInbound,
  type ApplicationArea,
  type InboundMessage,
  type InboundVerb,
} from './b2mml-inbound.ts';
import { acknowledgeProductionSchedule, confirmBod } from './b2mml-reply.ts';
import { parseXml, rootElementOf, screenXml, type XmlIssue } from './b2mml-xml.ts';
import type { XsdValidator } from './xsd-validator.ts';

export interface B2mmlIntakeDeps {
  readonly erp: ErpDeps;
  readonly validator: XsdValidator;
  readonly clock: Clock;
}

/** A batch answer: counts, and per order its outcome and the Loom order (operations left out). */
export const batchView = (r: AcceptedOrders) => ({
  created: r.created,
  updated: r.updated,
  unchanged: r.unchanged,
  orders: r.orders.map((o) => ({
    index: o.index,
    outcome: o.outcome,
    order: o.order,
    operations: o.operations.length,
  })),
});

/** Where a refused document went wrong: the 1-based line when the XML stage knows it. */
export interface IntakeProblem {
  readonly line: number | null;
  readonly message: string;
}

export type B2mmlIntake =
  | {
      readonly ok: true;
      /** The B2MML reply (`AcknowledgeProductionSchedule` or `ConfirmBOD`), stored with the BODID. */
      readonly reply: string;
      readonly summary: unknown;
      /** The BODID was applied before: nothing changed and `reply` is the one given then. */
      readonly replayed: boolean;
      readonly bodId: string;
    }
  | {
      readonly ok: false;
      readonly error: DomainError;
      /** The message's own ApplicationArea, when it could be read (echoed in the ConfirmBOD). */
      readonly area: ApplicationArea | null;
      readonly problems: readonly IntakeProblem[];
    };

export interface B2mmlIntakeOptions {
  /** The roots this entry point takes; all of INBOUND_SCHEMA unless narrowed (the file drop takes orders). */
  readonly accepts?: readonly InboundVerb[];
}

const ALL_VERBS = Object.keys(INBOUND_SCHEMA) as InboundVerb[];

const lineIssue = (i: XmlIssue): FieldIssue => ({
  path: `line ${i.line ?? '?'}${i.element ? `, element ${i.element}` : ''}`,
  message: i.message,
});

const xmlProblem = (i: XmlIssue): IntakeProblem => ({
  line: i.line,
  message: `${i.element ? `element ${i.element}: ` : ''}${i.message}`,
});

const fieldProblem = (i: FieldIssue): IntakeProblem => ({
  line: null,
  message: i.path ? `${i.path}: ${i.message}` : i.message,
});

function refused(error: DomainError, area: ApplicationArea | null, xml?: readonly XmlIssue[]): B2mmlIntake {
  const problems = xml ? xml.map(xmlProblem) : (error.issues ?? []).map(fieldProblem);
  return {
    ok: false,
    error,
    area,
    problems: problems.length > 0 ? problems : [{ line: null, message: error.message }],
  };
}

const isPrincipal = (actor: Actor): actor is Principal => 'via' in actor && typeof actor.userId === 'number';

/**
 * One B2MML document from the ERP, whichever way it came (`POST /api/erp/b2mml`, the file drop),
 * in the order docs/b2mml.md gives: DOCTYPE refused before any parser runs, well-formedness, root,
 * XSD, mapping, then applied once by its BODID in one transaction. Nothing is written unless every
 * step passed.
 */
export async function intakeB2mml(
  deps: B2mmlIntakeDeps,
  text: string,
  actor: Actor,
  ctx: CommandContext,
  options: B2mmlIntakeOptions = {},
): Promise<B2mmlIntake> {
  const accepts = options.accepts ?? ALL_VERBS;
  const screened = screenXml(text);
  if (!screened.ok) {
    const code = screened.reason === 'doctype' ? 'LOOM_B2MML_DOCTYPE_REFUSED' : 'LOOM_B2MML_MALFORMED';
    const where = lineIssue(screened.issue);
    return refused({ code, message: `${where.path}: ${screened.issue.message}`, issues: [where] }, null, [
      screened.issue,
    ]);
  }
  const root = rootElementOf(text);
  if (root === null || !isInboundVerb(root) || !accepts.includes(root)) {
    return refused(
      {
        code: 'LOOM_B2MML_UNSUPPORTED_MESSAGE',
        message: `Loom does not accept ${root ?? 'this document'}${accepts === ALL_VERBS ? '' : ' here'}; it accepts ${accepts.join(', ')} (B2MML V0600).`,
        issues: [{ path: 'line 1', message: `root element ${root ?? '(none)'} is not accepted` }],
      },
      null,
      [{ line: 1, element: root, message: `root element ${root ?? '(none)'} is not accepted` }],
    );
  }
  const verdict = await deps.validator.validate(text, INBOUND_SCHEMA[root]);
  if (!verdict.valid) {
    const issues = verdict.issues.map(lineIssue);
    const first = issues[0];
    return refused(
      {
        code: verdict.kind === 'malformed' ? 'LOOM_B2MML_MALFORMED' : 'LOOM_B2MML_SCHEMA_INVALID',
        message: `${root} ${verdict.kind === 'malformed' ? 'is not well-formed XML' : `does not validate against ${INBOUND_SCHEMA[root]}`}${first ? ` (${first.path}: ${first.message})` : ''}`,
        issues,
      },
      null,
      verdict.issues,
    );
  }
  const doc = parseXml(text);
  const read = readInbound(root, doc);
  if (!read.ok) {
    return refused(
      {
        code: read.issues.some((i) => i.path === 'ApplicationArea/BODID')
          ? 'LOOM_B2MML_BODID_REQUIRED'
          : 'LOOM_B2MML_CONTENT_INVALID',
        message: `${root} cannot be applied: ${read.issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
        issues: read.issues,
      },
      applicationAreaOf(doc),
    );
  }
  const outcome = await applyB2mml(deps, read.message, actor, ctx);
  if (outcome.kind === 'failed') return refused(outcome.error, read.message.area);
  return {
    ok: true,
    reply: outcome.value.reply,
    summary: outcome.value.summary,
    replayed: outcome.kind === 'replayed',
    bodId: read.message.area.bodId!,
  };
}

async function applyB2mml(
  deps: B2mmlIntakeDeps,
  message: InboundMessage,
  actor: Actor,
  ctx: CommandContext,
): Promise<InboundOutcome<{ reply: string; summary: unknown }>> {
  const { erp } = deps;
  const masterData = { plant: erp.plant, audit: erp.execution.audit };
  const area = message.area;
  const reply = { bodId: randomUUID(), at: deps.clock.now() };
  const located = (list: readonly { path: string }[]) => (i: number) => list[i]?.path ?? `[${i}]`;
  let content: unknown;
  let fn: (tx: Tx) => Promise<Result<{ reply: string; summary: unknown }>>;
  switch (message.verb) {
    case 'ProcessProductionSchedule':
      content = message.orders.map((o) => o.input);
      fn = async (tx) => {
        const r = await acceptOrders(
          erp.execution,
          tx,
          actor,
          message.orders.map((o) => o.input),
          ctx,
          located(message.orders),
        );
        if (!r.ok) return r;
        const acknowledged = r.value.orders.map((o) => ({
          ...message.refs[o.index]!,
          orderId: o.order.id,
          outcome: o.outcome,
        }));
        return ok({
          reply: acknowledgeProductionSchedule(area, acknowledged, reply),
          summary: batchView(r.value),
        });
      };
      break;
    case 'SyncMaterialDefinition':
      content = message.definitions.map((d) => d.input);
      fn = async (tx) => {
        const r = await syncMaterialDefinitions(
          masterData,
          tx,
          actor,
          message.definitions.map((d) => d.input),
          ctx,
          located(message.definitions),
        );
        if (!r.ok) return r;
        const text = r.value.map((d) => `${d.id} ${d.outcome}`).join(', ');
        return ok({
          reply: confirmBod(
            area,
            { accepted: true, code: 'OK', description: `Material definitions: ${text}` },
            reply,
          ),
          summary: r.value,
        });
      };
      break;
    case 'SyncMaterialLot': {
      // A goods receipt is recorded against a signed-in user (receiveLots takes a Principal); the
      // file drop, whose actor is no user, does not take SyncMaterialLot.
      if (!isPrincipal(actor)) {
        return {
          kind: 'failed',
          error: {
            code: 'LOOM_B2MML_UNSUPPORTED_MESSAGE',
            message:
              'SyncMaterialLot is accepted only from an authenticated integration (POST /api/erp/b2mml).',
          },
        };
      }
      const principal = actor;
      content = message.lots.map((l) => l.input);
      fn = async (tx) => {
        const r = await receiveLots(
          erp.materials,
          tx,
          principal,
          message.lots.map((l) => l.input),
          ctx,
          located(message.lots),
        );
        if (!r.ok) return r;
        const text = r.value.map((l) => `${l.id} (${l.quantity} ${l.unit}, ${l.status})`).join(', ');
        return ok({
          reply: confirmBod(
            area,
            { accepted: true, code: 'OK', description: `Lots received: ${text}` },
            reply,
          ),
          summary: r.value.map((l) => l.id),
        });
      };
      break;
    }
  }
  return applyInboundMessage(
    erp.execution.uow,
    erp.inbound,
    {
      messageId: area.bodId!,
      source: 'b2mml',
      verb: message.verb,
      requestHash: contentHash({ verb: message.verb, content }),
    },
    fn,
  );
}
