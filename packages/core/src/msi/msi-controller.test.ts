import { describe, expect, it } from 'vitest';
import { IMsiController } from './msi-controller.js';

describe('IMsiController', () => {
  it('its DI token is the global symbol iommukit.MsiController (every copy of the core shares it)', () => {
    expect(IMsiController).toBe(Symbol.for('iommukit.MsiController'));
  });
});
