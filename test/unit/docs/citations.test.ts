/**
 * The repository stands alone: every `docs/<page>.md §N` citation names a section that exists, and nothing
 * refers to a file outside the repository (a sibling checkout, a developer's absolute path).
 */
import assert from "node:assert/strict";
import { existsSync, globSync, readFileSync, statSync } from "node:fs";
import { describe, test } from "node:test";

const root = new URL("../../../", import.meta.url);

/** The repository's own text files (no node_modules, no build output), found without needing git. */
function trackedFiles(): string[] {
  const patterns = ["*.md", "{src,test,deploy,docs,scripts,bench,examples,bin}/**/*"];
  const text = /\.(ts|md|yaml|yml|json|sh|c|h)$|^scripts\/[^.]+$|^bin\//;
  return globSync(patterns, {
    cwd: root.pathname,
    exclude: (name) => name === "node_modules" || name === "build",
  })
    .filter((file) => text.test(file) && statSync(new URL(file, root)).isFile())
    .sort();
}

/** The section numbers of a docs page: `## 4.`, `### 1.6`, `### 4a.` → "4", "1.6", "4a". */
function sectionsOf(page: string): Set<string> {
  const text = readFileSync(new URL(page, root), "utf8");
  const sections = new Set<string>();
  for (const match of text.matchAll(/^#{2,4} (\d+(?:\.\d+)*[a-z]?)\.? /gm)) sections.add(match[1]!);
  return sections;
}

/** `docs/osm-behaviour.md §1.2–1.3, §4` → page and every section named, ranges by both ends. */
function citationsIn(text: string): { page: string; section: string }[] {
  const found: { page: string; section: string }[] = [];
  for (const match of text.matchAll(
    /(docs\/[a-z-]+\.md) ((?:§[\d.]+[a-z]?(?:[–-]§?[\d.]+[a-z]?)?(?:, )?)+)/g,
  )) {
    for (const part of match[2]!.matchAll(/§?([\d]+(?:\.\d+)*[a-z]?)/g)) {
      found.push({ page: match[1]!, section: part[1]!.replace(/\.$/, "") });
    }
  }
  return found;
}

describe("the repository stands alone", () => {
  const files = trackedFiles();

  test("every docs/<page>.md §N citation names a section of that page", () => {
    const sections = new Map<string, Set<string>>();
    const broken: string[] = [];
    let count = 0;
    for (const file of files) {
      const text = readFileSync(new URL(file, root), "utf8");
      for (const { page, section } of citationsIn(text)) {
        count++;
        if (!existsSync(new URL(page, root))) {
          broken.push(`${file}: ${page} does not exist`);
          continue;
        }
        if (!sections.has(page)) sections.set(page, sectionsOf(page));
        if (!sections.get(page)!.has(section)) broken.push(`${file}: ${page} has no §${section}`);
      }
    }
    assert.deepEqual(broken, []);
    assert.ok(count > 40, `expected the code's citations to be found, found ${count}`);
  });

  test("no file refers to a file outside the repository", () => {
    const outside = /\.\.\/shared\/|\/work\/(?:main|shared|wt)\b|\bspec §/;
    const offenders = files.filter(
      (file) =>
        file !== "test/unit/docs/citations.test.ts" &&
        outside.test(readFileSync(new URL(file, root), "utf8")),
    );
    assert.deepEqual(offenders, []);
  });
});
