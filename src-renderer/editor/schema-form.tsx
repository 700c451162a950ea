/**
 * A parameter form generated from a node's JSON Schema (as the catalog gives it): numbers with bounds and
 * steps, enums as selects, booleans, strings, arrays of numbers, nested objects. Each field validates as
 * the user types and shows the compiler's diagnostics for its path.
 */
import { useEffect, useId, useState } from 'react';

export interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  title?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
}

/** `anyOf: [X, {type: 'null'}]` and friends: the variant worth editing. */
export function effectiveSchema(schema: JsonSchema): JsonSchema {
  const variants = schema.anyOf ?? schema.oneOf;
  if (!variants) return schema;
  const main = variants.find((v) => v.type !== 'null') ?? variants[0];
  return {
    ...effectiveSchema(main),
    default: schema.default ?? main.default,
    description: schema.description ?? main.description,
  };
}

const typeOf = (schema: JsonSchema): string | undefined =>
  Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;

/** Why `value` does not fit `schema`, in words; null when it fits. */
export function schemaError(schemaIn: JsonSchema, value: unknown): string | null {
  const schema = effectiveSchema(schemaIn);
  const type = typeOf(schema);
  if (schema.enum && !schema.enum.some((e) => e === value)) {
    return `must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`;
  }
  if (type === 'number' || type === 'integer') {
    if (typeof value !== 'number' || Number.isNaN(value)) return 'must be a number';
    if (!Number.isFinite(value)) return 'must be finite';
    if (type === 'integer' && !Number.isInteger(value)) return 'must be a whole number';
    if (schema.minimum !== undefined && value < schema.minimum) return `must be at least ${schema.minimum}`;
    if (schema.maximum !== undefined && value > schema.maximum) return `must be at most ${schema.maximum}`;
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum)
      return `must be greater than ${schema.exclusiveMinimum}`;
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum)
      return `must be less than ${schema.exclusiveMaximum}`;
    return null;
  }
  if (type === 'boolean') return typeof value === 'boolean' ? null : 'must be true or false';
  if (type === 'string') {
    if (typeof value !== 'string') return 'must be text';
    if (schema.minLength !== undefined && value.length < schema.minLength)
      return `must have at least ${schema.minLength} characters`;
    if (schema.maxLength !== undefined && value.length > schema.maxLength)
      return `must have at most ${schema.maxLength} characters`;
    return null;
  }
  if (type === 'array') {
    if (!Array.isArray(value)) return 'must be a list';
    if (schema.minItems !== undefined && value.length < schema.minItems)
      return `needs at least ${schema.minItems} items`;
    if (schema.maxItems !== undefined && value.length > schema.maxItems)
      return `takes at most ${schema.maxItems} items`;
    if (schema.items) {
      for (let i = 0; i < value.length; i++) {
        const inner = schemaError(schema.items, value[i]);
        if (inner) return `item ${i + 1} ${inner}`;
      }
    }
    return null;
  }
  if (type === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'must be an object';
    for (const [key, inner] of Object.entries(schema.properties ?? {})) {
      const v = (value as Record<string, unknown>)[key];
      if (v === undefined) continue;
      const problem = schemaError(inner, v);
      if (problem) return `${key} ${problem}`;
    }
  }
  return null;
}

export function boundsText(schema: JsonSchema): string {
  const parts: string[] = [];
  if (schema.minimum !== undefined) parts.push(`≥ ${schema.minimum}`);
  if (schema.exclusiveMinimum !== undefined) parts.push(`> ${schema.exclusiveMinimum}`);
  if (schema.maximum !== undefined) parts.push(`≤ ${schema.maximum}`);
  if (schema.exclusiveMaximum !== undefined) parts.push(`< ${schema.exclusiveMaximum}`);
  return parts.join(', ');
}

export interface FieldProps {
  name: string;
  path: string;
  schema: JsonSchema;
  /** The value set on the node (undefined: the default applies). */
  value: unknown;
  /** Diagnostics of the compiler by parameter path. */
  serverErrors: ReadonlyMap<string, string>;
  onChange(path: string, value: unknown): void;
}

export function SchemaField({ name, path, schema: rawSchema, value, serverErrors, onChange }: FieldProps) {
  const schema = effectiveSchema(rawSchema);
  const type = typeOf(schema);
  const inputId = `param-${path.replace(/\./g, '-')}`;
  const messageId = useId();
  const current = value ?? schema.default;
  const label = schema.title ?? name;

  if (type === 'object' && schema.properties) {
    const object = (typeof current === 'object' && current !== null ? current : {}) as Record<
      string,
      unknown
    >;
    return (
      <fieldset className="param-group">
        <legend>{label}</legend>
        {schema.description && <p className="hint">{schema.description}</p>}
        {Object.entries(schema.properties).map(([key, inner]) => (
          <SchemaField
            key={key}
            name={key}
            path={`${path}.${key}`}
            schema={inner}
            value={object[key]}
            serverErrors={serverErrors}
            onChange={onChange}
          />
        ))}
      </fieldset>
    );
  }

  return (
    <TextishField
      inputId={inputId}
      messageId={messageId}
      label={label}
      type={type}
      schema={schema}
      current={current}
      isDefault={value === undefined}
      serverError={serverErrors.get(path)}
      onCommit={(v) => onChange(path, v)}
    />
  );
}

function toText(type: string | undefined, value: unknown): string {
  if (value === undefined || value === null) return '';
  if (type === 'array' && Array.isArray(value)) return value.join(', ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Parse what was typed; a string result is the reason it cannot be read. */
function fromText(
  type: string | undefined,
  text: string,
  schema: JsonSchema,
): { value: unknown } | { problem: string } {
  if (type === 'number' || type === 'integer') {
    if (text.trim() === '') return { problem: 'enter a number' };
    const n = Number(text);
    return Number.isNaN(n) ? { problem: 'enter a number' } : { value: n };
  }
  if (type === 'array') {
    const itemType = schema.items ? typeOf(effectiveSchema(schema.items)) : undefined;
    const parts = text.trim() === '' ? [] : text.split(',').map((s) => s.trim());
    if (itemType === 'number' || itemType === 'integer') {
      const numbers = parts.map(Number);
      if (numbers.some((n, i) => Number.isNaN(n) || parts[i] === ''))
        return { problem: 'enter numbers separated by commas' };
      return { value: numbers };
    }
    return { value: parts };
  }
  return { value: text };
}

function TextishField(props: {
  inputId: string;
  messageId: string;
  label: string;
  type: string | undefined;
  schema: JsonSchema;
  current: unknown;
  isDefault: boolean;
  serverError?: string;
  onCommit(value: unknown): void;
}) {
  const { inputId, messageId, label, type, schema, current, isDefault, serverError, onCommit } = props;
  const [draft, setDraft] = useState(() => toText(type, current));
  const [problem, setProblem] = useState<string | null>(null);
  // Follow outside changes (undo, another node selected) unless the draft already means the same value.
  useEffect(() => {
    setDraft((d) => {
      const parsed = fromText(type, d, schema);
      const same = 'value' in parsed && JSON.stringify(parsed.value) === JSON.stringify(current);
      return same ? d : toText(type, current);
    });
    setProblem(current === undefined ? null : schemaError(schema, current));
  }, [current, type, schema]);

  const shownError = problem ?? serverError ?? null;
  const describe = [schema.description, boundsText(schema)].filter(Boolean).join(' · ');

  const commitText = (text: string) => {
    setDraft(text);
    const parsed = fromText(type, text, schema);
    if ('problem' in parsed) {
      setProblem(parsed.problem);
      return;
    }
    setProblem(schemaError(schema, parsed.value));
    // Out-of-bounds numbers are kept (the compiler's diagnostics and the Run button then say why).
    onCommit(parsed.value);
  };

  let control: React.ReactNode;
  if (schema.enum) {
    control = (
      <select
        id={inputId}
        value={String(current ?? '')}
        aria-invalid={Boolean(shownError)}
        aria-describedby={messageId}
        onChange={(e) => {
          const picked = schema.enum!.find((v) => String(v) === e.target.value);
          onCommit(picked);
        }}
      >
        {schema.enum.map((option) => (
          <option key={String(option)} value={String(option)}>
            {String(option)}
          </option>
        ))}
      </select>
    );
  } else if (type === 'boolean') {
    control = (
      <input
        id={inputId}
        type="checkbox"
        checked={current === true}
        aria-describedby={messageId}
        onChange={(e) => onCommit(e.target.checked)}
      />
    );
  } else {
    const numeric = type === 'number' || type === 'integer';
    control = (
      <input
        id={inputId}
        type="text"
        inputMode={numeric ? 'decimal' : undefined}
        value={draft}
        aria-invalid={Boolean(shownError)}
        aria-describedby={messageId}
        spellCheck={false}
        onChange={(e) => commitText(e.target.value)}
        onKeyDown={(e) => {
          if (!numeric || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return;
          // Arrow keys step numbers, as a number input does.
          e.preventDefault();
          const base = Number(draft);
          if (Number.isNaN(base)) return;
          const step = type === 'integer' ? 1 : Math.max(Math.abs(base) * 0.1, 1e-6);
          const next = base + (e.key === 'ArrowUp' ? step : -step);
          commitText(String(type === 'integer' ? Math.round(next) : Number(next.toPrecision(6))));
        }}
      />
    );
  }

  return (
    <div className={`param${shownError ? ' invalid' : ''}`}>
      <label htmlFor={inputId}>
        {label}
        {isDefault && <span className="param-default"> (default)</span>}
      </label>
      {control}
      <div id={messageId} className="param-help">
        {shownError ? (
          <span className="param-error" role="alert">
            {problem ? `${label} ${problem}` : serverError}
          </span>
        ) : (
          describe
        )}
      </div>
    </div>
  );
}
