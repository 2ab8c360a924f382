/**
 * The composition root's view of tsyringe. `reflect-metadata` must be loaded before tsyringe evaluates,
 * so every module reaches tsyringe through this file. Constructors take explicit `@inject(token)` on every
 * parameter: decorator metadata (`design:paramtypes`) is not emitted by esbuild or vitest, so it is never
 * relied upon.
 */
import 'reflect-metadata';
import { type DependencyContainer, inject, injectable, container as rootContainer } from 'tsyringe';
import type { Token } from './token.js';

export { type DependencyContainer, inject, injectable };

/** A fresh child of the global container: one per system, one per VM. */
export function createChildContainer(parent: DependencyContainer = rootContainer): DependencyContainer {
  return parent.createChildContainer();
}

/** Resolves `tok` with its declared type. */
export function resolveToken<T>(c: DependencyContainer, tok: Token<T>): T {
  return c.resolve<T>(tok);
}

/** Registers a ready value for `tok`. */
export function provideValue<T>(c: DependencyContainer, tok: Token<T>, value: T): void {
  c.register<T>(tok, { useValue: value });
}
