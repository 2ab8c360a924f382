/**
 * Typed DI tokens. A token is a symbol that carries the type it resolves to, declared right above its
 * interface under the same name (`export const ITracer = token<ITracer>('iommukit.Tracer')`), so
 * `resolveToken(container, ITracer)` is typed without casts.
 */
export type Token<T> = symbol & { readonly __type?: T };

/** Creates (or returns, for the same name) the token for `name`. Names are namespaced: `iommukit.X`. */
export function token<T>(name: string): Token<T> {
  return Symbol.for(name) as Token<T>;
}
