import type { ReceiveLotInput } from '../../app/material/receive-lot.ts';
import type { FieldIssue } from '../../domain/shared/result.ts';
import { attributeOf, child, children, textOf, type XmlElement, type XmlNode } from './b2mml-xml.ts';

/** The B2MML V0600 messages Loom accepts, with the schema file that declares each root. */
export const INBOUND_SCHEMA = {
  ProcessProductionSchedule: 'B2MML-V0600-ProductionSchedule.xsd',
  SyncMaterialDefinition: 'B2MML-V0600-Material.xsd',
  SyncMaterialLot: 'B2MML-V0600-Material.xsd',
} as const;
export type InboundVerb = keyof typeof INBOUND_SCHEMA;

export const isInboundVerb = (name: string): name is InboundVerb => Object.hasOwn(INBOUND_SCHEMA, name);

/** The parts of `ApplicationArea` Loom echoes in its reply (`OriginalApplicationArea`). */
export interface ApplicationArea {
  readonly bodId: string | undefined;
  readonly creationDateTime: string | undefined;
  readonly senderLogicalId: string | undefined;
  readonly releaseId: string | undefined;
}

/** One item the message asks for, located in the document (`ProductionRequest[1] (ID 1000452)`). */
export interface Located<T> {
  readonly path: string;
  readonly input: T;
}

export interface ScheduleRequestRef {
  /** Index of the ProductionSchedule in DataArea. */
  readonly schedule: number;
  readonly scheduleId: string | undefined;
  readonly requestId: string | undefined;
}

export type InboundMessage =
  | {
      readonly verb: 'ProcessProductionSchedule';
      readonly area: ApplicationArea;
      readonly orders: readonly Located<Record<string, unknown>>[];
      readonly refs: readonly ScheduleRequestRef[];
    }
  | {
      readonly verb: 'SyncMaterialDefinition';
      readonly area: ApplicationArea;
      readonly definitions: readonly Located<Record<string, unknown>>[];
    }
  | {
      readonly verb: 'SyncMaterialLot';
      readonly area: ApplicationArea;
      readonly lots: readonly Located<ReceiveLotInput>[];
    };

export type Read =
  | { readonly ok: true; readonly message: InboundMessage }
  | { readonly ok: false; readonly issues: readonly FieldIssue[] };

export function applicationAreaOf(root: XmlElement): ApplicationArea {
  const area = child(root, 'ApplicationArea');
  return {
    bodId: textOf(child(area, 'BODID')),
    creationDateTime: textOf(child(area, 'CreationDateTime')),
    senderLogicalId: textOf(child(child(area, 'Sender'), 'LogicalID')),
    releaseId: attributeOf(root, 'releaseID'),
  };
}

/** xsd:dateTime allows a time without offset; Loom refuses it rather than guess the zone. */
const OFFSET = /(Z|[+-]\d{2}:\d{2})$/;

function dateTime(node: XmlNode | undefined, path: string, issues: FieldIssue[]): string | undefined {
  const t = textOf(node);
  if (t === undefined) return undefined;
  if (!OFFSET.test(t) || Number.isNaN(Date.parse(t))) {
    issues.push({ path, message: `'${t}' needs a UTC offset (Z or ±hh:mm); Loom does not guess time zones` });
    return undefined;
  }
  return new Date(t).toISOString();
}

/** Segment requirements, nested ones included, depth first. */
function segments(el: XmlNode | undefined): XmlNode[] {
  return children(el, 'SegmentRequirement').flatMap((s) => [s, ...segments(s)]);
}

/**
 * ProductionRequest → Loom order (docs/b2mml.md "ProcessProductionSchedule"):
 * ID → externalId; ProductProductionRuleID, else the MaterialDefinitionID of the first
 * MaterialProducedRequirement → product; that requirement's Quantity → quantity and unit;
 * EndTime, else the latest LatestEndTime of its segments → dueAt; Priority → priority.
 */
function readSchedule(root: XmlElement, issues: FieldIssue[]) {
  const orders: Located<Record<string, unknown>>[] = [];
  const refs: ScheduleRequestRef[] = [];
  const schedules = children(child(root, 'DataArea'), 'ProductionSchedule');
  schedules.forEach((schedule, s) => {
    const scheduleId = textOf(child(schedule, 'ID'));
    const scheduleEnd = child(schedule, 'EndTime');
    children(schedule, 'ProductionRequest').forEach((request, r) => {
      const requestId = textOf(child(request, 'ID'));
      const at = `ProductionSchedule[${s}]/ProductionRequest[${r}]${requestId ? ` (ID ${requestId})` : ''}`;
      refs.push({ schedule: s, scheduleId, requestId });
      const produced = segments(request).flatMap((seg) => children(seg, 'MaterialProducedRequirement'));
      const rule = textOf(child(request, 'ProductProductionRuleID'));
      const product = rule ?? textOf(child(produced[0], 'MaterialDefinitionID'));
      const requirement =
        produced.find((p) => textOf(child(p, 'MaterialDefinitionID')) === product) ?? produced[0];
      const quantity = child(requirement, 'Quantity');
      const latestEnd = segments(request)
        .map((seg) => textOf(child(seg, 'LatestEndTime')))
        .filter((t): t is string => t !== undefined)
        .sort()
        .at(-1);
      const due =
        child(request, 'EndTime') !== undefined
          ? dateTime(child(request, 'EndTime'), `${at}/EndTime`, issues)
          : latestEnd !== undefined
            ? dateTime(latestEnd, `${at}/SegmentRequirement/LatestEndTime`, issues)
            : dateTime(scheduleEnd, `ProductionSchedule[${s}]/EndTime`, issues);
      const priorityText = textOf(child(request, 'Priority'));
      const priority = priorityText === undefined ? undefined : Number(priorityText);
      if (requestId === undefined)
        issues.push({ path: `${at}/ID`, message: 'is required: it is the order number Loom keeps' });
      if (product === undefined) {
        issues.push({
          path: at,
          message:
            'names no product: give ProductProductionRuleID or a MaterialProducedRequirement with a MaterialDefinitionID',
        });
      }
      if (quantity === undefined) {
        issues.push({
          path: at,
          message: 'has no quantity: give a MaterialProducedRequirement with a Quantity',
        });
      }
      if (priority !== undefined && !(Number.isInteger(priority) && priority >= 1 && priority <= 999)) {
        issues.push({
          path: `${at}/Priority`,
          message: `must be a whole number from 1 to 999; got ${priorityText}`,
        });
      }
      orders.push({
        path: at,
        input: {
          externalId: requestId,
          product,
          quantity: textOf(child(quantity, 'QuantityString')),
          ...(textOf(child(quantity, 'UnitOfMeasure'))
            ? { unit: textOf(child(quantity, 'UnitOfMeasure')) }
            : {}),
          ...(due !== undefined ? { dueAt: due } : {}),
          ...(priority !== undefined ? { priority } : {}),
        },
      });
    });
  });
  if (orders.length === 0) {
    issues.push({
      path: 'DataArea/ProductionSchedule',
      message: 'holds no ProductionRequest; nothing to do',
    });
  }
  return { orders, refs };
}

/** A property's value by its ID (case-insensitive), `MaterialDefinitionProperty/Value/ValueString`. */
function property(el: XmlNode | undefined, name: string, ...ids: string[]): string | undefined {
  const wanted = ids.map((i) => i.toLowerCase());
  const p = children(el, name).find((x) => wanted.includes(textOf(child(x, 'ID'))?.toLowerCase() ?? ''));
  return textOf(child(child(p, 'Value'), 'ValueString'));
}

const MATERIAL_CLASSES = ['raw', 'component', 'intermediate', 'finished', 'consumable'];

/**
 * MaterialDefinition → Loom material definition (docs/b2mml.md): ID → id; the first Description →
 * name (else the ID); MaterialClassID naming a Loom class, else the property `class` → class;
 * the property `unit` → unit; the property `tracking` (lot, serial, none; default lot) → tracking.
 */
function readDefinitions(root: XmlElement): Located<Record<string, unknown>>[] {
  return children(child(root, 'DataArea'), 'MaterialDefinition').map((d, i) => {
    const id = textOf(child(d, 'ID'));
    const descriptions = children(d, 'Description').map(textOf);
    const classId = children(d, 'MaterialClassID')
      .map(textOf)
      .find((c) => c !== undefined && MATERIAL_CLASSES.includes(c.toLowerCase()));
    const unit =
      property(d, 'MaterialDefinitionProperty', 'unit', 'UnitOfMeasure', 'BaseUnit') ??
      textOf(child(child(children(d, 'MaterialDefinitionProperty')[0], 'Value'), 'UnitOfMeasure'));
    return {
      path: `MaterialDefinition[${i}]${id ? ` (ID ${id})` : ''}`,
      input: {
        id,
        name: descriptions[0] ?? id,
        unit,
        class: (classId ?? property(d, 'MaterialDefinitionProperty', 'class'))?.toLowerCase(),
        tracking: (property(d, 'MaterialDefinitionProperty', 'tracking') ?? 'lot').toLowerCase(),
        ...(descriptions[1] !== undefined ? { description: descriptions[1] } : {}),
      },
    };
  });
}

/**
 * MaterialLot → a received Loom lot (docs/b2mml.md): ID → id; MaterialDefinitionID → material;
 * Quantity/QuantityString and UnitOfMeasure → quantity and unit; Status Released → Released,
 * anything else → Quarantine; StorageLocation → location; the property `supplierLot` → supplierLot.
 */
function readLots(root: XmlElement): Located<ReceiveLotInput>[] {
  return children(child(root, 'DataArea'), 'MaterialLot').map((l, i) => {
    const id = textOf(child(l, 'ID')) ?? '';
    const quantity = child(l, 'Quantity');
    const unit = textOf(child(quantity, 'UnitOfMeasure'));
    const location = textOf(child(l, 'StorageLocation'));
    const supplierLot = property(l, 'MaterialLotProperty', 'supplierLot', 'SupplierLotID');
    return {
      path: `MaterialLot[${i}] (ID ${id})`,
      input: {
        id,
        material: textOf(child(l, 'MaterialDefinitionID')) ?? '',
        quantity: textOf(child(quantity, 'QuantityString')),
        ...(unit !== undefined ? { unit } : {}),
        status: textOf(child(l, 'Status'))?.toLowerCase() === 'released' ? 'Released' : 'Quarantine',
        ...(location !== undefined ? { location } : {}),
        ...(supplierLot !== undefined ? { supplierLot } : {}),
      },
    };
  });
}

/** Maps a schema-valid message to what Loom's use cases take; issues name where in the document. */
export function readInbound(verb: InboundVerb, root: XmlElement): Read {
  const area = applicationAreaOf(root);
  const issues: FieldIssue[] = [];
  if (area.bodId === undefined) {
    issues.push({
      path: 'ApplicationArea/BODID',
      message: 'is required: Loom applies each message once, by its BODID',
    });
  }
  let message: InboundMessage;
  switch (verb) {
    case 'ProcessProductionSchedule': {
      const { orders, refs } = readSchedule(root, issues);
      message = { verb, area, orders, refs };
      break;
    }
    case 'SyncMaterialDefinition':
      message = { verb, area, definitions: readDefinitions(root) };
      break;
    case 'SyncMaterialLot':
      message = { verb, area, lots: readLots(root) };
      break;
  }
  const deletes = children(child(child(root, 'DataArea'), 'Sync'), 'ActionCriteria').some(
    (c) => attributeOf(child(c, 'ActionExpression'), 'actionCode')?.toLowerCase() === 'delete',
  );
  if (deletes) {
    issues.push({
      path: 'DataArea/Sync/ActionCriteria/ActionExpression',
      message: "actionCode 'Delete' is not accepted from the ERP; delete master data in Loom",
    });
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, message };
}
