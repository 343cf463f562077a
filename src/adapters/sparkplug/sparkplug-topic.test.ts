import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commandTopic, invalidSparkplugId, parseSparkplugTopic, stateTopic } from './sparkplug-topic.ts';

describe('parseSparkplugTopic', () => {
  it('reads node and device messages with their ids', () => {
    assert.deepEqual(parseSparkplugTopic('spBv1.0/plant1/NDATA/press-edge'), {
      ok: true,
      topic: { kind: 'edge', type: 'NDATA', group: 'plant1', edgeNode: 'press-edge', device: null },
    });
    assert.deepEqual(parseSparkplugTopic('spBv1.0/plant1/DDEATH/press-edge/press-1'), {
      ok: true,
      topic: { kind: 'edge', type: 'DDEATH', group: 'plant1', edgeNode: 'press-edge', device: 'press-1' },
    });
  });

  it('tells commands and host state apart from edge messages', () => {
    const ncmd = parseSparkplugTopic('spBv1.0/g/NCMD/e');
    assert.ok(ncmd.ok && ncmd.topic.kind === 'command');
    assert.deepEqual(parseSparkplugTopic('spBv1.0/STATE/loom'), {
      ok: true,
      topic: { kind: 'state', hostId: 'loom' },
    });
  });

  it('H20: refuses wrong shapes, unknown verbs and invalid ids as values', () => {
    const reason = (t: string) => {
      const r = parseSparkplugTopic(t);
      return r.ok ? 'ok' : r.reason;
    };
    assert.equal(reason('spAv1.0/g/NDATA/e'), 'not-sparkplug');
    assert.equal(reason('spBv1.0/g/XDATA/e'), 'unknown-message-type');
    assert.equal(reason('spBv1.0/g/NDATA/e/extra'), 'wrong-shape');
    assert.equal(reason('spBv1.0/g/DDATA/e'), 'wrong-shape');
    assert.equal(reason('spBv1.0/g/DDATA/e/d/with/slash'), 'wrong-shape');
    assert.equal(reason('spBv1.0/g/NDATA/'), 'invalid-id');
    assert.equal(reason('spBv1.0//NDATA/e'), 'invalid-id');
    assert.equal(reason('spBv1.0/g+/NDATA/e'), 'invalid-id');
    assert.equal(reason('spBv1.0/g/NDATA/e#'), 'invalid-id');
    assert.equal(reason('spBv1.0/g/NDATA/e\u0000'), 'invalid-id');
    assert.equal(reason('spBv1.0/STATE/loom/extra'), 'wrong-shape');
    assert.equal(reason('spBv1.0/STATE/NDATA/e'), 'wrong-shape');
    assert.equal(reason('spBv1.0/g'), 'wrong-shape');
  });
});

describe('topic builders', () => {
  it('builds STATE, NCMD and DCMD topics', () => {
    assert.equal(stateTopic('loom'), 'spBv1.0/STATE/loom');
    assert.equal(commandTopic('g', 'e', null), 'spBv1.0/g/NCMD/e');
    assert.equal(commandTopic('g', 'e', 'd'), 'spBv1.0/g/DCMD/e/d');
  });

  it('H20: an id may not be empty or hold +, #, / or NUL', () => {
    assert.equal(invalidSparkplugId('press-1'), null);
    assert.equal(invalidSparkplugId('Presse Ü'), null);
    for (const bad of ['', 'a+b', 'a#', 'a/b', 'a\u0000'])
      assert.notEqual(invalidSparkplugId(bad), null, bad);
  });
});
