/**
 * Type-checking exported graph modules with the TypeScript compiler API: one Program over many files,
 * with the project's own compiler options, so `import ... from 'agent-rl-studio'` resolves through the
 * package's `exports` exactly as it does for a user inside the project.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { repoRoot } from './graphs.ts';

/** A fresh folder inside the project (ignored by git and biome) for generated files and runs. */
export function scratchDir(name: string): string {
  const dir = path.join(repoRoot, '.runs', `${name}-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Writes each module into `dir` and returns `file: message` for every type error in them. */
export function typeCheckModules(dir: string, modules: { fileName: string; code: string }[]): string[] {
  const config = ts.readConfigFile(path.join(repoRoot, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, repoRoot);
  const files = modules.map((m) => {
    const file = path.join(dir, m.fileName);
    writeFileSync(file, m.code);
    return file;
  });
  const program = ts.createProgram(files, { ...parsed.options, noEmit: true });
  const errors: string[] = [];
  for (const file of files) {
    const source = program.getSourceFile(file);
    if (!source) {
      errors.push(`${file}: not loaded`);
      continue;
    }
    const diagnostics = [
      ...program.getSyntacticDiagnostics(source),
      ...program.getSemanticDiagnostics(source),
    ];
    for (const d of diagnostics) {
      const where = d.start === undefined ? '' : `:${source.getLineAndCharacterOfPosition(d.start).line + 1}`;
      errors.push(`${path.basename(file)}${where}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    }
  }
  return errors;
}

export interface ModuleShape {
  /** The syntax kinds of every AST node, depth first: what the code does, without names or values. */
  kinds: ts.SyntaxKind[];
  /** The values of all string literals. */
  strings: string[];
  /** The text of every identifier. */
  identifiers: string[];
}

export function shapeOf(code: string): ModuleShape {
  const source = ts.createSourceFile('module.ts', code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const shape: ModuleShape = { kinds: [], strings: [], identifiers: [] };
  const visit = (node: ts.Node) => {
    shape.kinds.push(node.kind);
    if (ts.isStringLiteral(node)) shape.strings.push(node.text);
    if (ts.isIdentifier(node)) shape.identifiers.push(node.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return shape;
}
