import { B2MML_V0600_NS, el, textEl } from './b2mml-xml.ts';
import type { ApplicationArea, ScheduleRequestRef } from './b2mml-inbound.ts';

/** Loom's name as a B2MML sender (`ApplicationArea/Sender/LogicalID`). */
export const LOOM_LOGICAL_ID = 'Loom';

const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** Loom's own ApplicationArea: a fresh BODID for every document Loom sends. */
export function ownApplicationArea(bodId: string, at: Date): string {
  return el(
    'ApplicationArea',
    null,
    el('Sender', null, textEl('LogicalID', LOOM_LOGICAL_ID)),
    textEl('CreationDateTime', at.toISOString()),
    textEl('BODID', bodId),
  );
}

/** The message being answered, as `OriginalApplicationArea` (CreationDateTime is mandatory there). */
function originalArea(area: ApplicationArea | null, at: Date): string | null {
  if (!area) return null;
  return el(
    'OriginalApplicationArea',
    null,
    area.senderLogicalId !== undefined ? el('Sender', null, textEl('LogicalID', area.senderLogicalId)) : null,
    textEl('CreationDateTime', area.creationDateTime ?? at.toISOString()),
    textEl('BODID', area.bodId),
  );
}

export interface AcknowledgedRequest extends ScheduleRequestRef {
  readonly orderId: string;
  readonly outcome: 'created' | 'updated' | 'unchanged';
}

/** `AcknowledgeProductionSchedule`: every ProductionRequest with the Loom order it became. */
export function acknowledgeProductionSchedule(
  area: ApplicationArea,
  requests: readonly AcknowledgedRequest[],
  reply: { bodId: string; at: Date },
): string {
  const bySchedule = new Map<number, AcknowledgedRequest[]>();
  for (const r of requests) bySchedule.set(r.schedule, [...(bySchedule.get(r.schedule) ?? []), r]);
  const schedules = [...bySchedule.values()].map((rs) =>
    el(
      'ProductionSchedule',
      null,
      textEl('ID', rs[0]!.scheduleId),
      ...rs.map((r) =>
        el(
          'ProductionRequest',
          null,
          textEl('ID', r.requestId),
          textEl('Description', `Loom order ${r.orderId}: ${r.outcome}`),
        ),
      ),
    ),
  );
  return (
    DECLARATION +
    el(
      'AcknowledgeProductionSchedule',
      { xmlns: B2MML_V0600_NS, releaseID: area.releaseId ?? '6.0' },
      ownApplicationArea(reply.bodId, reply.at),
      el(
        'DataArea',
        null,
        el(
          'Acknowledge',
          null,
          originalArea(area, reply.at),
          el(
            'ResponseCriteria',
            null,
            el('ResponseExpression', { actionCode: 'Accepted' }, `${requests.length} production requests`),
          ),
        ),
        ...schedules,
      ),
    )
  );
}

/**
 * `ConfirmBOD`: the answer to a Sync message, and to any message Loom refuses (`Rejected`, with
 * the Loom error code and one Note per problem, each naming where in the document it is).
 */
export function confirmBod(
  area: ApplicationArea | null,
  confirmation: { accepted: boolean; code?: string; description: string; notes?: readonly string[] },
  reply: { bodId: string; at: Date },
): string {
  return (
    DECLARATION +
    el(
      'ConfirmBOD',
      // V0600's ConfirmBODType declares no releaseID attribute.
      { xmlns: B2MML_V0600_NS },
      ownApplicationArea(reply.bodId, reply.at),
      el(
        'DataArea',
        null,
        el(
          'Confirm',
          null,
          originalArea(area, reply.at),
          el(
            'ResponseCriteria',
            null,
            el(
              'ResponseExpression',
              { actionCode: confirmation.accepted ? 'Accepted' : 'Rejected' },
              confirmation.code ?? (confirmation.accepted ? 'OK' : 'LOOM_INTERNAL'),
            ),
          ),
        ),
        el(
          'BOD',
          null,
          originalArea(area, reply.at),
          textEl('Description', confirmation.description),
          ...(confirmation.notes ?? []).map((n) => textEl('Note', n)),
        ),
      ),
    )
  );
}
