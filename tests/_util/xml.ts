/**
 * A minimal, strict XML reader for tests that parse the JUnit report back: it
 * fails on anything that is not well-formed (bare `&`, stray `>`, unclosed or
 * mismatched tags, characters XML 1.0 forbids) and decodes what it reads.
 * @module
 */

import assert from "node:assert/strict";

/** An element of a parsed XML document. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

function decodeEntities(s: string): string {
  assert.doesNotMatch(s, /&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i, `bare & in ${s}`);
  return s.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);/gi, (_, e: string) => {
    const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
    if (e in named) return named[e];
    return String.fromCodePoint(
      e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10),
    );
  });
}

/** Parses well-formed XML (elements, attributes, text, prolog, comments) or fails the test. */
export function parseXml(src: string): XmlElement {
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(src, /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|[\ud800-\udfff]/u);
  let i = 0;
  const prolog = /^<\?xml[^?]*\?>/.exec(src);
  if (prolog) i = prolog[0].length;
  const root: XmlElement = { name: "#root", attrs: {}, children: [], text: "" };
  const stack = [root];
  while (i < src.length) {
    if (src.startsWith("<!--", i)) {
      const end = src.indexOf("-->", i);
      assert.ok(end > 0, "unterminated comment");
      i = end + 3;
    } else if (src.startsWith("</", i)) {
      const m = /^<\/([A-Za-z_][\w.-]*)\s*>/.exec(src.slice(i));
      assert.ok(m, `bad end tag at ${i}`);
      const top = stack.pop()!;
      assert.equal(top.name, m[1], "mismatched end tag");
      i += m[0].length;
    } else if (src[i] === "<") {
      const m =
        /^<([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_:][\w:.-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/
          .exec(src.slice(i));
      assert.ok(m, `bad start tag at ${i}: ${src.slice(i, i + 80)}`);
      const el: XmlElement = { name: m[1], attrs: {}, children: [], text: "" };
      for (const a of m[2].matchAll(/([A-Za-z_:][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        assert.ok(!(a[1] in el.attrs), `duplicate attribute ${a[1]}`);
        el.attrs[a[1]] = decodeEntities(a[2] ?? a[3]);
      }
      stack.at(-1)!.children.push(el);
      if (!m[3]) stack.push(el);
      i += m[0].length;
    } else {
      const end = src.indexOf("<", i);
      const raw = src.slice(i, end < 0 ? src.length : end);
      assert.ok(!raw.includes(">"), "raw > in text");
      if (stack.length === 1) assert.equal(raw.trim(), "", "text outside the root element");
      stack.at(-1)!.text += decodeEntities(raw);
      i += raw.length;
    }
  }
  assert.equal(stack.length, 1, "unclosed elements");
  assert.equal(root.children.length, 1, "exactly one root element");
  return root.children[0];
}

/** Every element named `name` below `el`, in document order. */
export function descendants(el: XmlElement, name: string): XmlElement[] {
  const found: XmlElement[] = [];
  for (const c of el.children) {
    if (c.name === name) found.push(c);
    found.push(...descendants(c, name));
  }
  return found;
}

/**
 * The structure rules of the Jenkins xUnit plugin's junit-10.xsd
 * (src/main/resources/org/jenkinsci/plugins/xunit/types/model/xsd/junit-10.xsd):
 * for each element, the attributes it may have, those it must have, and the
 * elements it may contain. Anything else makes the plugin skip the file.
 */
export const JUNIT_10: Record<string, { attrs: string[]; required: string[]; children: string[] }> =
  {
    testsuites: {
      attrs: ["name", "time", "tests", "failures", "errors"],
      required: [],
      children: ["testsuite"],
    },
    testsuite: {
      attrs: [
        "name",
        "tests",
        "failures",
        "errors",
        "group",
        "time",
        "skipped",
        "timestamp",
        "hostname",
        "id",
        "package",
        "file",
        "log",
        "url",
      ],
      required: ["name", "tests", "failures", "errors"],
      children: ["testsuite", "properties", "testcase", "system-out", "system-err"],
    },
    properties: { attrs: [], required: [], children: ["property"] },
    property: { attrs: ["name", "value"], required: ["name", "value"], children: [] },
    testcase: {
      attrs: ["name", "time", "classname", "group"],
      required: ["name"],
      children: [
        "skipped",
        "error",
        "failure",
        "rerunFailure",
        "rerunError",
        "flakyFailure",
        "flakyError",
        "system-out",
        "system-err",
      ],
    },
    failure: { attrs: ["type", "message"], required: [], children: [] },
    error: { attrs: ["type", "message"], required: [], children: [] },
    skipped: { attrs: ["type", "message"], required: [], children: [] },
    "system-out": { attrs: [], required: [], children: [] },
    "system-err": { attrs: [], required: [], children: [] },
  };
/** junit-10.xsd's SUREFIRE_TIME pattern, for `time` on testsuites and testsuite. */
export const SUREFIRE_TIME = /^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$/;

/** Fails unless the element tree follows the junit-10.xsd rules above. */
export function assertJunit10(el: XmlElement, path = el.name): void {
  const rule = JUNIT_10[el.name];
  assert.ok(rule, `${path}: <${el.name}> is not an element of junit-10.xsd`);
  for (const a of Object.keys(el.attrs)) {
    assert.ok(rule.attrs.includes(a), `${path}: attribute ${a} is not allowed on <${el.name}>`);
  }
  for (const a of rule.required) assert.ok(a in el.attrs, `${path}: ${a} is required`);
  if ((el.name === "testsuites" || el.name === "testsuite") && el.attrs.time !== undefined) {
    assert.match(el.attrs.time, SUREFIRE_TIME, `${path}: time`);
  }
  for (const c of el.children) {
    assert.ok(rule.children.includes(c.name), `${path}: <${c.name}> not allowed in <${el.name}>`);
    assertJunit10(c, `${path}/${c.name}`);
  }
}
