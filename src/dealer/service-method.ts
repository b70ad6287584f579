/**
 * `@serviceMethod`: marks a class method as callable through the router. Works as a TC39
 * decorator (Bun, TypeScript 5+), as a legacy decorator, and as a plain function for JavaScript.
 */
import { toJsonSchema } from "@valibot/to-json-schema";
import type * as v from "valibot";
import {
  type CompressionPlan,
  type CompressOption,
  type MethodTaskDefaults,
  type MethodTaskDefaultsWire,
  resolveCompress,
  taskDefaultsToWire,
  ValidationError,
} from "../protocol/index.ts";

/** What a method is told about the call it is running (with `context: true`). */
export interface CallContext {
  /** Aborted when the client cancels, the call times out, or the dealer stops its connection. */
  signal: AbortSignal;
  /** The router's id of this request. */
  requestId: number;
  /** Full method name, "Service.method". */
  method: string;
  /** Epoch milliseconds after which the router gives up, if the call has a timeout. */
  deadline?: number;
  /** The task this call is an attempt of (`client.submit`); undefined for a plain call. */
  taskId?: string;
  /** Which attempt of its task this is, from 1; undefined for a plain call. */
  attempt?: number;
  /** The caller's W3C `traceparent` (CallOptions / SubmitOptions), untouched; undefined when none was given. */
  traceparent?: string;
  /** The caller's W3C `tracestate`, with `traceparent`. */
  tracestate?: string;
  /**
   * Reports progress of a task (any JSON, e.g. `{ current: 3, total: 10 }`): stored as the task's
   * latest progress and sent to its watchers. Throttled (the latest value wins), so it is cheap to
   * call in a loop; a no-op for a plain call.
   */
  progress(value: unknown): void;
}

export interface ServiceMethodOptions {
  /** Public method name (after "Service."). Default: the property name. */
  name?: string;
  description?: string;
  /** A valibot schema for the argument array, e.g. `v.tuple([v.number(), v.number()])`. Checked before the method runs. */
  params?: v.GenericSchema;
  /** Force streaming (the method returns an iterable). Default: true for generator methods. */
  stream?: boolean;
  /** Pass a CallContext as one extra, last argument. Default false. */
  context?: boolean;
  /** Free-form data shown by discovery. */
  metadata?: Record<string, unknown>;
  /**
   * Defaults for this method's background tasks (`client.submit`); a submit's own options win.
   * `rateLimit` ("10/m") limits every execution of the method, calls too, across all dealers.
   */
  task?: MethodTaskDefaults;
  /**
   * Compress the binary values of this method's results and stream chunks: "zstd" or "gzip", or
   * `{ codec, force, level }` (PROTOCOL.md §5.2). Bytes already in a compressed format (PNG,
   * JPEG, zip, gzip, MP4, ...) and frames under 1 KiB are sent as they are unless `force`. The
   * JSON part is not compressed. Default: off.
   */
  compress?: CompressOption;
}

export interface MethodDefinition {
  /** Property on the instance that holds the function. */
  property: string;
  name: string;
  description?: string;
  params?: v.GenericSchema;
  paramsJsonSchema?: Record<string, unknown>;
  stream: boolean;
  context: boolean;
  metadata?: Record<string, unknown>;
  /** The task defaults in their wire form (milliseconds). */
  taskDefaults?: MethodTaskDefaultsWire;
  /** How its results' and chunks' binary values are compressed, if they are. */
  compress?: CompressionPlan;
}

/** Any function or class: decorators and registration accept whatever the user wrote. */
// biome-ignore lint/complexity/noBannedTypes: a user's class or method of any signature.
type AnyFunction = Function;

/** Functions marked as service methods, with their options; the class hierarchy is walked at start. */
const marked = new WeakMap<AnyFunction, ServiceMethodOptions>();

type MethodFunction = (...args: never[]) => unknown;

/**
 * Marks a method as a service method.
 *
 * @example
 * class EchoService extends ServiceDealer {
 *   @serviceMethod echo(message: string) { return message; }
 *   @serviceMethod({ description: "Add two numbers", params: v.tuple([v.number(), v.number()]) })
 *   add(a: number, b: number) { return a + b; }
 * }
 */
export function serviceMethod<F extends MethodFunction>(value: F, context: ClassMethodDecoratorContext): F;
export function serviceMethod(
  options: ServiceMethodOptions,
): <F extends MethodFunction>(value: F, context?: unknown, descriptor?: PropertyDescriptor) => F;
export function serviceMethod(target: object, propertyKey: string, descriptor: PropertyDescriptor): PropertyDescriptor;
export function serviceMethod(first: unknown, second?: unknown, third?: unknown): unknown {
  if (typeof first === "function") {
    mark(first, {});
    return first;
  }
  if (typeof second === "string" && third && typeof (third as PropertyDescriptor).value === "function") {
    mark((third as PropertyDescriptor).value, {});
    return third;
  }
  const options = (first ?? {}) as ServiceMethodOptions;
  return (value: unknown, _context?: unknown, descriptor?: PropertyDescriptor) => {
    const fn = typeof value === "function" ? value : descriptor?.value;
    if (typeof fn !== "function") throw new ValidationError("@serviceMethod decorates methods only", { data: { path: "" } });
    mark(fn, options);
    return descriptor ?? value;
  };
}

/**
 * Registers a method without decorators (plain JavaScript).
 * @example registerServiceMethod(EchoService, "echo", { description: "Echo" });
 */
export function registerServiceMethod(cls: AnyFunction, property: string, options: ServiceMethodOptions = {}): void {
  const fn = (cls.prototype as Record<string, unknown>)[property];
  if (typeof fn !== "function") throw new ValidationError(`${cls.name}.${property} is not a method`, { data: { path: property } });
  mark(fn, options);
}

function mark(fn: AnyFunction, options: ServiceMethodOptions): void {
  marked.set(fn, options);
}

const GENERATOR_KINDS = new Set(["GeneratorFunction", "AsyncGeneratorFunction"]);

/** Every service method of an instance, walking up the class chain; subclasses win. */
export function collectMethods(instance: object): MethodDefinition[] {
  const seen = new Set<string>();
  const definitions: MethodDefinition[] = [];
  for (let proto = Object.getPrototypeOf(instance); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const property of Object.getOwnPropertyNames(proto)) {
      if (property === "constructor" || seen.has(property)) continue;
      const descriptor = Object.getOwnPropertyDescriptor(proto, property);
      const fn = descriptor?.value;
      if (typeof fn !== "function") continue;
      const options = marked.get(fn) ?? findMarkedAncestor(proto, property);
      if (!options) continue;
      seen.add(property);
      definitions.push(define(property, fn, options));
    }
  }
  return definitions;
}

/** An override without the decorator still counts when the method it overrides was marked. */
function findMarkedAncestor(proto: object, property: string): ServiceMethodOptions | undefined {
  for (let parent = Object.getPrototypeOf(proto); parent && parent !== Object.prototype; parent = Object.getPrototypeOf(parent)) {
    const fn = Object.getOwnPropertyDescriptor(parent, property)?.value;
    if (typeof fn === "function" && marked.has(fn)) return marked.get(fn);
  }
  return undefined;
}

/**
 * ServiceDealer's own public members: a service method with one of these names would replace the
 * dealer's (`start`, `stop`). Its internals are #private, so any other name is free (`run` too).
 */
const DEALER_MEMBERS = new Set(["start", "stop", "setup", "teardown", "serviceName", "dealerId", "registered", "load", "tags", "gpus"]);

function define(property: string, fn: AnyFunction, options: ServiceMethodOptions): MethodDefinition {
  if (DEALER_MEMBERS.has(property)) {
    throw new ValidationError(
      `"${property}" is a ServiceDealer member and cannot be a service method; name the method otherwise (options.name can still publish it as "${property}")`,
      { data: { path: "name" } },
    );
  }
  const name = options.name ?? property;
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(name)) {
    throw new ValidationError(`service method name "${name}" must be an identifier (letters, digits, _)`, { data: { path: "name" } });
  }
  let paramsJsonSchema: Record<string, unknown> | undefined;
  if (options.params) {
    try {
      paramsJsonSchema = toJsonSchema(options.params, { errorMode: "ignore" }) as Record<string, unknown>;
    } catch {
      paramsJsonSchema = undefined;
    }
  }
  return {
    property,
    name,
    description: options.description,
    params: options.params,
    paramsJsonSchema,
    stream: options.stream ?? GENERATOR_KINDS.has(fn.constructor.name),
    context: options.context ?? false,
    metadata: options.metadata,
    taskDefaults: options.task === undefined ? undefined : taskDefaultsToWire(options.task, `${name}.task`),
    compress: resolveCompress(options.compress, `${name}.compress`),
  };
}
