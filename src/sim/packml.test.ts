import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  PACKML_COMMAND_NAMES,
  PACKML_COMMAND_NUMBERS,
  PACKML_COMMANDS,
  PACKML_STATE_NAMES,
  PACKML_STATE_NUMBERS,
  PACKML_STATES,
  PackmlStateMachine,
  allowedPackmlCommands,
  isPackmlCommand,
  isPackmlState,
  packmlTransition,
  type PackmlState,
} from './packml.ts';

describe('PackML tables', () => {
  it('number the 17 states and 9 commands as TR88.00.02 PackTags do', () => {
    assert.equal(PACKML_STATES.length, 17);
    assert.deepEqual(
      PACKML_STATES.map((s) => PACKML_STATE_NUMBERS[s]),
      Array.from({ length: 17 }, (_, i) => i + 1),
    );
    assert.equal(PACKML_STATE_NUMBERS.Execute, 6);
    assert.equal(PACKML_STATE_NUMBERS.Complete, 17);
    assert.deepEqual(PACKML_COMMANDS, [
      'Reset',
      'Start',
      'Stop',
      'Hold',
      'Unhold',
      'Suspend',
      'Unsuspend',
      'Abort',
      'Clear',
    ]);
    assert.equal(PACKML_COMMAND_NUMBERS.Abort, 8);
  });

  it('map numbers back to names and know nothing of other numbers', () => {
    for (const s of PACKML_STATES) assert.equal(PACKML_STATE_NAMES.get(PACKML_STATE_NUMBERS[s]), s);
    for (const c of PACKML_COMMANDS) assert.equal(PACKML_COMMAND_NAMES.get(PACKML_COMMAND_NUMBERS[c]), c);
    assert.equal(PACKML_STATE_NAMES.get(0), undefined);
    assert.equal(PACKML_STATE_NAMES.get(18), undefined);
    assert.equal(PACKML_COMMAND_NAMES.get(10), undefined);
    assert.ok(isPackmlState('Held') && !isPackmlState('Running') && !isPackmlState('toString'));
    assert.ok(isPackmlCommand('Unhold') && !isPackmlCommand('Pause'));
  });
});

describe('packmlTransition', () => {
  it('allows Abort everywhere except in the abort branch', () => {
    for (const s of PACKML_STATES) {
      assert.equal(
        packmlTransition(s, 'Abort'),
        s === 'Aborting' || s === 'Aborted' ? undefined : 'Aborting',
        s,
      );
    }
  });

  it('allows Stop everywhere except when stopping, stopped, aborting, aborted or clearing', () => {
    const refused = PACKML_STATES.filter((s) => packmlTransition(s, 'Stop') === undefined);
    assert.deepEqual(refused.sort(), ['Aborted', 'Aborting', 'Clearing', 'Stopped', 'Stopping']);
  });

  it('lists the commands each wait state accepts', () => {
    const expected: Partial<Record<PackmlState, string[]>> = {
      Stopped: ['Reset', 'Abort'],
      Idle: ['Start', 'Stop', 'Abort'],
      Execute: ['Stop', 'Hold', 'Suspend', 'Abort'],
      Held: ['Stop', 'Unhold', 'Abort'],
      Suspended: ['Stop', 'Unsuspend', 'Abort'],
      Complete: ['Reset', 'Stop', 'Abort'],
      Aborted: ['Clear'],
      Starting: ['Stop', 'Abort'],
      Aborting: [],
    };
    for (const [state, commands] of Object.entries(expected)) {
      assert.deepEqual(allowedPackmlCommands(state as PackmlState), commands, state);
    }
  });
});

describe('PackmlStateMachine', () => {
  it('starts in Idle unless told otherwise', () => {
    assert.equal(new PackmlStateMachine().state, 'Idle');
    assert.equal(new PackmlStateMachine({ initial: 'Stopped' }).stateNumber, 2);
  });

  it('runs Start → Starting → Execute after the acting time, not before', () => {
    const m = new PackmlStateMachine({ actingMs: 500 });
    assert.deepEqual(m.command('Start'), { ok: true, from: 'Idle', to: 'Starting' });
    m.advance(499);
    assert.equal(m.state, 'Starting');
    m.advance(1);
    assert.equal(m.state, 'Execute');
    m.advance(60_000);
    assert.equal(m.state, 'Execute', 'Execute never ends by time');
  });

  it('refuses a command the current state does not accept and stays where it is', () => {
    const m = new PackmlStateMachine({ initial: 'Execute' });
    assert.deepEqual(m.command('Start'), {
      ok: false,
      state: 'Execute',
      message: 'Start is not allowed in Execute',
    });
    assert.equal(m.state, 'Execute');
    assert.deepEqual(m.commandNumber(42), {
      ok: false,
      state: 'Execute',
      message: '42 is not a PackML command number (1-9)',
    });
  });

  it('holds and unholds by command number', () => {
    const m = new PackmlStateMachine({ initial: 'Execute', actingMs: 100 });
    assert.ok(m.commandNumber(PACKML_COMMAND_NUMBERS.Hold).ok);
    assert.equal(m.state, 'Holding');
    m.advance(100);
    assert.equal(m.state, 'Held');
    assert.equal(m.commandNumber(4).ok, false, 'Hold again in Held');
    assert.ok(m.commandNumber(5).ok);
    m.advance(100);
    assert.equal(m.state, 'Execute');
  });

  it('completes several acting states in one long step', () => {
    const m = new PackmlStateMachine({ initial: 'Execute', actingMs: 200 });
    m.command('Abort');
    m.advance(1000);
    assert.equal(m.state, 'Aborted');
    m.command('Clear');
    m.advance(200);
    assert.equal(m.state, 'Stopped');
    m.command('Reset');
    m.advance(200);
    assert.equal(m.state, 'Idle');
  });

  it('interrupts an acting state with Stop and Abort', () => {
    const m = new PackmlStateMachine({ initial: 'Idle', actingMs: 500 });
    m.command('Start');
    m.advance(200);
    assert.equal(m.command('Stop').ok, true);
    assert.equal(m.state, 'Stopping');
    m.advance(300);
    assert.equal(m.state, 'Stopping', 'a new acting state starts its own time');
    m.advance(200);
    assert.equal(m.state, 'Stopped');
  });

  it('takes acting times per state and leaves the others at 500 ms', () => {
    const m = new PackmlStateMachine({ initial: 'Execute', actingMs: { Suspending: 50 } });
    m.command('Suspend');
    m.advance(50);
    assert.equal(m.state, 'Suspended');
    m.command('Unsuspend');
    m.advance(499);
    assert.equal(m.state, 'Unsuspending');
    m.advance(1);
    assert.equal(m.state, 'Execute');
  });

  it('goes Execute → Completing → Complete when the machine says its work is done', () => {
    const m = new PackmlStateMachine({ initial: 'Execute', actingMs: 0 });
    assert.ok(m.complete().ok);
    m.advance(0);
    assert.equal(m.state, 'Complete');
    assert.equal(m.complete().ok, false);
    assert.ok(m.command('Reset').ok);
  });

  it('refuses a negative acting time', () => {
    assert.throws(() => new PackmlStateMachine({ actingMs: -1 }), RangeError);
  });
});
