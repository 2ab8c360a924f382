/**
 * The object table of one iommufd context (Linux: the `objects` xarray of an `iommufd_ctx`). IDs start
 * at 1 and the lowest free one is reused; a destroyed vDEVICE's ID is a tombstone that answers `ENOENT`
 * and is not reused until the context closes. An object can be destroyed only while nothing else holds
 * it (`users === 1`, the table's own reference), else `EBUSY`.
 */
import { IommufdError } from '../errors/iommufd-error.js';

export type ObjectType =
  | 'ioas'
  | 'device'
  | 'hwpt-paging'
  | 'hwpt-nested'
  | 'fault'
  | 'viommu'
  | 'vdevice'
  | 'veventq';

export abstract class IommufdObject {
  abstract readonly type: ObjectType;
  id = 0;
  /** References: 1 for the table, +1 for every object or attachment that depends on this one. */
  users = 1;

  /** Releases what this object holds on others; called once, when it leaves the table. */
  abstract destroy(): void;
}

/** Object ID limit (the kernel's xa_limit_31b). */
// Stryker disable next-line ArithmeticOperator: a test cannot create 2^31 objects; the limit is tested small
const MAX_ID = 2 ** 31 - 1;

export class ObjectTable {
  private readonly objects = new Map<number, IommufdObject>();
  private readonly tombstones = new Set<number>();

  /** `maxId`: the largest ID handed out (the kernel's 2^31 − 1; smaller only to test running out). */
  constructor(private readonly maxId = MAX_ID) {}

  add<T extends IommufdObject>(object: T): T {
    let id = 1;
    while (this.objects.has(id) || this.tombstones.has(id)) id++;
    if (id > this.maxId) throw new IommufdError('ENOSPC', 'no free object ID');
    object.id = id;
    this.objects.set(id, object);
    return object;
  }

  /** The object with `id`, of one of `types` if given; `ENOENT` otherwise (as `iommufd_get_object`). */
  get<T extends IommufdObject>(id: number, ...types: T['type'][]): T {
    const object = this.objects.get(id);
    if (!object || (types.length > 0 && !types.includes(object.type))) {
      const want = types.length > 0 ? ` of type ${types.join(' or ')}` : '';
      throw new IommufdError('ENOENT', `no object ${id}${want}`, { id });
    }
    return object as T;
  }

  /** The object with `id`, if there is one (for lookups whose error is not `ENOENT`). */
  find(id: number): IommufdObject | undefined {
    return this.objects.get(id);
  }

  /** `IOMMU_DESTROY`: `EBUSY` while other users hold the object. */
  destroy(id: number): void {
    const object = this.get(id);
    if (object.users > 1) {
      throw new IommufdError(
        'EBUSY',
        `object ${id} (${object.type}) is in use by ${object.users - 1} other user(s)`,
        {
          id,
          type: object.type,
        },
      );
    }
    this.remove(object);
  }

  /** Removes an object whatever its users (the owner tears it down), leaving a tombstone if asked. */
  remove(object: IommufdObject, tombstone = false): void {
    if (this.objects.get(object.id) !== object) return;
    this.objects.delete(object.id);
    if (tombstone) this.tombstones.add(object.id);
    object.destroy();
  }

  list(): IommufdObject[] {
    return [...this.objects.values()];
  }

  /** Close: destroy leaf-first (objects nobody else holds) until empty, then forget tombstones. */
  close(): void {
    for (let guard = this.objects.size + 1; this.objects.size > 0 && guard > 0; guard--) {
      for (const object of [...this.objects.values()].reverse()) if (object.users === 1) this.remove(object);
    }
    for (const object of [...this.objects.values()]) this.remove(object);
    this.tombstones.clear();
  }
}

export function hold(object: IommufdObject): void {
  object.users++;
}

export function release(object: IommufdObject): void {
  object.users--;
}
