// A Stryker ignorer: mutants of the words of an error or trace message, and of an option's description,
// are left out of the score (shown as "Ignored" in the report). A changed message is not a modelling bug, and pinning every message's text
// in a test would make the suite brittle without checking behaviour. Codes are not messages: an error's
// code ('EINVAL', 'PLUGIN_NOT_FOUND') and a trace event's name ('tlb.hit') stay mutated.
import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';

const CODE = /^[A-Z][A-Z0-9_]*$/;
const MESSAGE_CALLS = new Set(['trace', 'log']);

/** The name a call or `new` expression calls: `f(...)` → f, `a.b.f(...)` → f. */
function calleeName(callee) {
  if (callee.type === 'Identifier') return callee.name;
  if (callee.type === 'MemberExpression' && callee.property.type === 'Identifier')
    return callee.property.name;
  return undefined;
}

/** A string or template literal passed as the message of `new …Error(…)` or of a `trace`/`log` call. */
function isMessage(path) {
  const node = path.node;
  const literal = node.type === 'StringLiteral' || node.type === 'TemplateLiteral';
  if (!literal || path.listKey !== 'arguments') return false;
  const call = path.parent;
  const name = calleeName(call.callee);
  if (call.type === 'NewExpression' && name?.endsWith('Error'))
    return node.type === 'TemplateLiteral' || !CODE.test(node.value);
  // trace(layer, source, name, message) and this.trace/this.log(name, message): the message is the
  // argument after the name, and the only one that is a sentence (a template or words with spaces).
  if (call.type === 'CallExpression' && MESSAGE_CALLS.has(name) && path.key > 0)
    return node.type === 'TemplateLiteral' || /\s/.test(node.value);
  // zod's `.describe(text)` documents a config option: the text is rendered into docs/configuration.md and
  // the vendor pages, whose generated tables their own tests pin.
  if (call.type === 'CallExpression' && name === 'describe' && call.callee.type === 'MemberExpression')
    return true;
  return false;
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'message-literals', {
    shouldIgnore: (path) =>
      isMessage(path) ? 'the text of an error or trace message, or of an option description' : undefined,
  }),
];
