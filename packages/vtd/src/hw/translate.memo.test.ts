import { PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { RW, request, sid, translationRig } from '../../test/translation-rig.js';
import { FR } from './fault-reasons.js';
import { PGTT } from './pasid-entry.js';

const IOVA = 0x4000_0000;
const PA = 0x1_0020_0000;
const DEV = sid(3, 0x10);

describe('VT-d translation: what the hit memo replays', () => {
  it('a repeated scalable-mode hit moves the context, PASID and IOTLB counters as the lookups would', () => {
    const rig = translationRig();
    const fs = rig.firstStage(4);
    fs.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    rig.pasidEntry(rig.scalableContext(DEV, { paside: true }), 1, {
      pgtt: PGTT.FIRST_STAGE,
      did: 3,
      fsptptr: fs.rootPa,
    });
    const t = rig.translator;
    const hits = () => {
      const s = rig.caches.stats();
      return [s.contextCacheHits, s.pasidCacheHits, s.iotlbHits];
    };
    t.translate(request(DEV, IOVA, PERM_READ, 1));
    const second = t.translate(request(DEV, IOVA, PERM_READ, 1));
    expect(hits()).toEqual([1, 1, 1]);
    expect(t.translate(request(DEV, IOVA, PERM_READ, 1))).toBe(second);
    expect(hits()).toEqual([2, 2, 2]);
  });

  it('a translation that walked is no hit to replay: the next lookup hits the IOTLB', () => {
    const rig = translationRig({}, false);
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA), 0x2000n, RW);
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa });
    const t = rig.translator;
    t.translate(request(DEV, IOVA));
    // The context now hits, the IOTLB misses: a walk.
    t.translate(request(DEV, IOVA + 0x1000));
    expect(rig.caches.iotlb.hits).toBe(0);
    const hit = t.translate(request(DEV, IOVA + 0x1000));
    expect(rig.caches.iotlb.hits).toBe(1);
    expect(t.translate(request(DEV, IOVA + 0x1000))).toBe(hit);
    expect(rig.caches.iotlb.hits).toBe(2);
  });

  it('a repeated fault is handled, and recorded, each time', () => {
    const rig = translationRig({}, false);
    const ss = rig.secondStage(4);
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa });
    for (let i = 0; i < 3; i++) rig.translator.translate(request(DEV, IOVA));
    expect([rig.faults.length, rig.translator.faults]).toEqual([3, 3]);
  });

  it('a fault answered from cache hits alone is handled again too (permission, caching-mode not present)', () => {
    const rig = translationRig({ cachingMode: true }, false);
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA), 0x1000n, { read: true, write: false });
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa });
    const t = rig.translator;
    t.translate(request(DEV, IOVA));
    t.translate(request(DEV, IOVA + 0x1000));
    for (let i = 0; i < 3; i++) {
      t.translate(request(DEV, IOVA, PERM_WRITE));
      t.translate(request(DEV, IOVA + 0x1000));
    }
    expect(rig.caches.iotlb.hits).toBe(6);
    expect(rig.faults.map((f) => f.reason)).toEqual([
      FR.READ_DENIED,
      ...[1, 2, 3].flatMap(() => [FR.WRITE_DENIED, FR.READ_DENIED]),
    ]);
    expect(t.faults).toBe(7);
  });

  it('a scalable pass-through answer is replayed from the context and PASID caches alone', () => {
    const rig = translationRig();
    rig.pasidEntry(rig.scalableContext(DEV, { paside: true }), 1, { pgtt: PGTT.PASS_THROUGH, did: 3 });
    const t = rig.translator;
    t.translate(request(DEV, IOVA, PERM_READ, 1));
    const second = t.translate(request(DEV, IOVA, PERM_READ, 1));
    expect(t.translate(request(DEV, IOVA, PERM_READ, 1))).toBe(second);
    expect([rig.caches.context.hits, rig.caches.pasid.hits, rig.caches.iotlb.hits]).toEqual([2, 2, 0]);
  });
});
