import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { qualificationStatus, validatePerson, validateQualificationDefinition } from './person.ts';

describe('qualificationStatus', () => {
  const holding = { issued: '2025-03-01', expires: '2026-02-28' };

  it('counts the expiry day itself as valid', () => {
    assert.equal(qualificationStatus(holding, '2026-02-28'), 'valid');
  });

  it('reports a qualification as expired on the day after expiry', () => {
    assert.equal(qualificationStatus(holding, '2026-03-01'), 'expired');
  });

  it('reports a qualification as not yet valid the day before it is issued', () => {
    assert.equal(qualificationStatus(holding, '2025-02-28'), 'not-yet-valid');
    assert.equal(qualificationStatus(holding, '2025-03-01'), 'valid');
  });

  it('never expires a qualification without an expiry date', () => {
    assert.equal(qualificationStatus({ issued: '2001-01-01', expires: null }, '2099-12-31'), 'valid');
  });

  it('throws on a malformed day rather than comparing garbage', () => {
    assert.throws(() => qualificationStatus(holding, '1.3.2026'), RangeError);
  });
});

describe('validatePerson', () => {
  const references = { qualifications: new Set(['welding', 'torque-tooling']) };

  it('accepts a trainee who holds no qualifications yet', () => {
    const result = validatePerson({ id: 'trainee-sam', name: 'Sam Okafor' }, references);
    assert.ok(result.ok);
    assert.deepEqual(result.value.qualifications, []);
  });

  it('refuses a holding that expires before it is issued', () => {
    const result = validatePerson(
      {
        id: 'op-anna',
        name: 'Anna',
        qualifications: [{ qualification: 'welding', issued: '2025-06-01', expires: '2025-05-31' }],
      },
      references,
    );
    assert.ok(!result.ok);
    assert.deepEqual(result.error.issues, [
      {
        path: 'qualifications[0].expires',
        message: 'expires must not be before issued (2025-06-01); expires is the last valid day',
      },
    ]);
  });

  it('refuses impossible dates and a missing expiry', () => {
    const result = validatePerson(
      { id: 'op-anna', name: 'Anna', qualifications: [{ qualification: 'welding', issued: '2025-02-30' }] },
      references,
    );
    assert.ok(!result.ok);
    assert.deepEqual(
      result.error.issues?.map((i) => [i.path, i.message]),
      [
        ['qualifications[0].issued', 'issued must be a calendar date written YYYY-MM-DD, e.g. 2025-03-31'],
        ['qualifications[0].expires', 'expires is required'],
      ],
    );
  });

  it('refuses a qualification that is not defined', () => {
    const result = validatePerson(
      {
        id: 'op-anna',
        name: 'Anna',
        qualifications: [
          { qualification: 'welding', issued: '2025-01-01', expires: null },
          { qualification: 'forklift', issued: '2025-01-01', expires: null },
        ],
      },
      references,
    );
    assert.ok(!result.ok);
    assert.deepEqual(result.error.issues, [
      {
        path: 'qualifications[1].qualification',
        message: "qualification 'forklift' is not defined; add it under qualifications or fix the id",
      },
    ]);
  });
});

describe('validateQualificationDefinition', () => {
  it('refuses a validity that is not a whole number of days', () => {
    const result = validateQualificationDefinition({ id: 'welding', name: 'Welding', validityDays: 365.5 });
    assert.ok(!result.ok);
    assert.deepEqual(result.error.issues?.[0]?.path, 'validityDays');
  });
});
