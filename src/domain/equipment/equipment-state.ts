/**
 * Equipment state, PackML-derived (DESIGN.md), plus Down (with a reason) and Setup. The
 * reaction/telemetry work derives it from machine data; until then it is set through the API.
 */
export const EQUIPMENT_STATES = [
  'Idle',
  'Execute',
  'Held',
  'Suspended',
  'Stopped',
  'Aborted',
  'Complete',
  'Down',
  'Setup',
  'Unknown',
] as const;
export type EquipmentState = (typeof EQUIPMENT_STATES)[number];

/** States in which an operation must not be started on the unit (issue: "not Down/Held"). */
const UNABLE: ReadonlySet<EquipmentState> = new Set(['Down', 'Held', 'Aborted']);

export const isAbleToStart = (s: EquipmentState): boolean => !UNABLE.has(s);
