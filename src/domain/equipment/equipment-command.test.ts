import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Signal } from '../signal/signal.ts';
import {
  compareReadBack,
  outcomeOf,
  parseCommand,
  planCommand,
  rolesFor,
  type EquipmentCommand,
} from './equipment-command.ts';
import { packmlTransition, parsePackmlState, statesAccepting } from './packml-states.ts';

const modbus = (address: number) => ({
  modbus: {
    host: '127.0.0.1',
    port: 502,
    unitId: 1,
    table: 'holding' as const,
    address,
    type: 'uint16' as const,
    wordOrder: 'big' as const,
    byteOrder: 'big' as const,
    scale: 1,
    offset: 0,
    pollMs: 1000,
  },
});

const signal = (id: string, extra: Partial<Signal> = {}): Signal => ({
  id,
  equipment: 'press-1',
  dataType: 'number',
  source: modbus(id.length),
  writable: true,
  ...extra,
});

const SIGNALS: Signal[] = [
  signal('press-1.speed', { limits: { low: 0, high: 120 }, unit: 'spm' }),
  signal('press-1.peak', { limits: { low: 50 } }),
  signal('press-1.die', { dataType: 'string' }),
  signal('press-1.strokes', { writable: false }),
  signal('press-1.state', { packml: 'state', writable: false }),
  signal('press-1.cmd', { packml: 'command' }),
  signal('oven-1.setpoint', { equipment: 'oven-1' }),
];

function parsed(input: unknown): EquipmentCommand {
  const r = parseCommand(input);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.error));
  return r.value;
}

function issuesOf(input: unknown, signals = SIGNALS): { path: string; message: string }[] {
  const r = planCommand(parsed(input), 'press-1', signals);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.error.code, 'LOOM_COMMAND_INVALID');
  return !r.ok ? [...(r.error.issues ?? [])] : [];
}

describe('command bodies', () => {
  it('names a missing reason and a missing recipe signature, with what to do', () => {
    const r = parseCommand({ kind: 'recipe', recipe: 'R1', parameters: [{ signal: 'a', value: 1 }] });
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'LOOM_COMMAND_INVALID');
    const byPath = new Map(r.error.issues!.map((i) => [i.path, i.message]));
    assert.match(byPath.get('reason')!, /^reason is required: say why/);
    assert.match(byPath.get('signature')!, /^signature is required: a recipe download is a recipe change/);
  });

  it('refuses an unknown kind, an empty recipe and more than 100 parameters', () => {
    const kind = parseCommand({ kind: 'jog', reason: 'x' });
    assert.ok(!kind.ok && kind.error.issues?.[0]?.path === 'kind');
    assert.match(!kind.ok ? kind.error.message : '', /must be one of setpoint, recipe, start/);
    const base = { kind: 'recipe', recipe: 'R', reason: 'r', signature: { password: 'p', meaning: 'm' } };
    assert.equal(parseCommand({ ...base, parameters: [] }).ok, false);
    const many = Array.from({ length: 101 }, (_, i) => ({ signal: `s${i}`, value: i }));
    assert.equal(parseCommand({ ...base, parameters: many }).ok, false);
  });

  it('gives setpoints and recipes to engineers, supervisors and admins, PackML commands also to operators', () => {
    assert.deepEqual(rolesFor('setpoint'), ['engineer', 'supervisor', 'admin']);
    assert.deepEqual(rolesFor('recipe'), ['engineer', 'supervisor', 'admin']);
    assert.ok(rolesFor('start').includes('operator'));
    assert.ok(!rolesFor('recipe').includes('operator'));
  });
});

describe('planning a command against the equipment’s signals', () => {
  it('accepts a setpoint within limits and writes just that signal, unchecked by state', () => {
    const r = planCommand(
      parsed({ kind: 'setpoint', signal: 'press-1.speed', value: 60, reason: 'r' }),
      'press-1',
      SIGNALS,
    );
    assert.ok(r.ok);
    assert.equal(r.value.writes[0]?.signal.id, 'press-1.speed');
    assert.equal(r.value.check, null);
  });

  it('names each bad signal or value with its path and the fix', () => {
    const issues = issuesOf({
      kind: 'recipe',
      recipe: 'R1',
      reason: 'r',
      signature: { password: 'p', meaning: 'm' },
      parameters: [
        { signal: 'oven-1.setpoint', value: 1 },
        { signal: 'press-1.strokes', value: 1 },
        { signal: 'press-1.speed', value: 'fast' },
        { signal: 'press-1.peak', value: 10 },
        { signal: 'press-1.speed', value: 200 },
        { signal: 'press-1.cmd', value: 2 },
      ],
    });
    const at = (p: string) => issues.find((i) => i.path === p)?.message ?? '';
    assert.match(
      at('parameters[0].signal'),
      /not a signal of press-1; its writable signals are press-1\.speed/,
    );
    assert.match(at('parameters[1].signal'), /read-only \(writable: false/);
    assert.match(
      at('parameters[2].value'),
      /must be a number: 'press-1\.speed' is a number signal; got 'fast'/,
    );
    assert.match(at('parameters[3].value'), /must be at least 50 \(the limits of 'press-1\.peak'\); got 10/);
    assert.match(at('parameters[4].signal'), /repeats parameters\[2\]; a recipe writes each signal once/);
    assert.match(at('parameters[5].signal'), /PackML command signal of press-1; send kind start/);
    assert.equal(issues.length, 6);
  });

  it('checks limits with the unit', () => {
    const [issue] = issuesOf({ kind: 'setpoint', signal: 'press-1.speed', value: 121, reason: 'r' });
    assert.equal(issue?.path, 'value');
    assert.match(String(issue?.message), /must be from 0 to 120 spm/);
  });

  it('interlocks a recipe on the PackML state, and refuses one without a state signal', () => {
    const recipe = parsed({
      kind: 'recipe',
      recipe: 'R1',
      reason: 'r',
      signature: { password: 'p', meaning: 'm' },
      parameters: [{ signal: 'press-1.speed', value: 10 }],
    });
    const r = planCommand(recipe, 'press-1', SIGNALS);
    assert.ok(r.ok);
    assert.deepEqual(r.value.check, { kind: 'interlock', permitted: ['Idle', 'Stopped'] });
    assert.equal(r.value.stateSignal?.id, 'press-1.state');
    const none = planCommand(
      recipe,
      'press-1',
      SIGNALS.filter((s) => s.packml !== 'state'),
    );
    assert.ok(!none.ok && none.error.code === 'LOOM_COMMAND_NO_PACKML_SIGNAL');
    assert.match(!none.ok ? none.error.message : '', /no state, no interlock, no download/);
  });

  it('writes a PackML command as its CntrlCmd number, and needs a command signal', () => {
    const r = planCommand(parsed({ kind: 'hold', reason: 'r' }), 'press-1', SIGNALS);
    assert.ok(r.ok);
    assert.equal(r.value.writes[0]?.signal.id, 'press-1.cmd');
    assert.equal(r.value.writes[0]?.value, 4);
    const none = planCommand(
      parsed({ kind: 'start', reason: 'r' }),
      'press-1',
      SIGNALS.filter((s) => s.packml !== 'command'),
    );
    assert.ok(!none.ok && none.error.code === 'LOOM_COMMAND_NO_PACKML_SIGNAL');
    assert.match(!none.ok ? none.error.message : '', /no PackML command signal to write start to/);
  });
});

describe('PackML states and transitions', () => {
  it('reads a state from its name in any case or from its number', () => {
    assert.equal(parsePackmlState('Idle'), 'Idle');
    assert.equal(parsePackmlState(' execute '), 'Execute');
    assert.equal(parsePackmlState(4), 'Idle');
    assert.equal(parsePackmlState('11'), 'Held');
    assert.equal(parsePackmlState(0), null);
    assert.equal(parsePackmlState(18), null);
    assert.equal(parsePackmlState(4.5), null);
    assert.equal(parsePackmlState(null), null);
    assert.equal(parsePackmlState('Running'), null);
  });

  it('starts only from Idle and holds only from Execute, naming the current state when refused', () => {
    assert.deepEqual(packmlTransition('Idle', 'start', 'p'), { ok: true, value: 'Starting' });
    const refused = packmlTransition('Execute', 'start', 'press-1');
    assert.ok(!refused.ok);
    assert.equal(refused.error.code, 'LOOM_COMMAND_TRANSITION_REFUSED');
    assert.equal(
      refused.error.message,
      'press-1 is in PackML state Execute; start is accepted only in Idle.',
    );
    assert.ok(packmlTransition('Execute', 'hold', 'p').ok);
    assert.equal(packmlTransition('Idle', 'hold', 'p').ok, false);
    assert.deepEqual(statesAccepting('reset'), ['Complete', 'Stopped']);
    assert.equal(packmlTransition('Aborted', 'clear', 'p').ok, true);
    assert.equal(packmlTransition('Stopped', 'stop', 'p').ok, false);
    assert.equal(packmlTransition('Aborted', 'abort', 'p').ok, false);
    assert.equal(packmlTransition('Held', 'abort', 'p').ok, true);
  });
});

describe('read-back variance', () => {
  it('counts float32 rounding as equal and anything more as a variance, with the difference', () => {
    assert.deepEqual(compareReadBack(0.1, Math.fround(0.1)), {
      matches: true,
      difference: Math.fround(0.1) - 0.1,
    });
    assert.equal(compareReadBack(123_456_789, Math.fround(123_456_789)).matches, true);
    assert.deepEqual(compareReadBack(300, 250), { matches: false, difference: -50 });
    assert.equal(compareReadBack(12.3, 123 * 0.1).matches, true);
    assert.equal(compareReadBack(1, 1.001).matches, false);
    assert.deepEqual(compareReadBack(true, true), { matches: true, difference: null });
    assert.equal(compareReadBack('A', 'B').matches, false);
    assert.equal(compareReadBack(5, null).matches, false);
  });

  it('sums parameters into the command outcome', () => {
    assert.equal(outcomeOf(['confirmed', 'confirmed']), 'confirmed');
    assert.equal(outcomeOf(['confirmed', 'variance']), 'variance');
    assert.equal(outcomeOf(['confirmed', 'failed', 'not-sent']), 'failed');
  });
});
