/** IOAS object (`IOMMUFD_OBJ_IOAS`): an IOVA space users map memory into, shared by the HWPTs built on it. */

import { U64_MAX } from '../address/address.js';
import type { HwptPagingObject } from './hw-pagetable.js';
import { IoPagetable } from './io-pagetable.js';
import { IommufdObject } from './object-table.js';

export class IoasObject extends IommufdObject {
  readonly type = 'ioas';
  readonly iopt = new IoPagetable();
  /** Paging HWPTs on this IOAS, oldest first: the order the auto-domain search tries them in. */
  readonly hwpts: HwptPagingObject[] = [];

  destroy(): void {
    // Nothing holds the IOAS any more (else destroy was EBUSY): dropping the areas unpins their pages.
    this.iopt.unmap(0n, U64_MAX);
  }
}
