import { XMLParser, XMLValidator } from 'fast-xml-parser';

/** B2MML V0600's target namespace (MESA B2MML V0600 schemas, `targetNamespace`). */
export const B2MML_V0600_NS = 'http://www.mesa.org/xml/B2MML-V0600';

/** Where an XML document is not acceptable: 1-based line, the element concerned, what is wrong. */
export interface XmlIssue {
  readonly line: number | null;
  readonly element: string | null;
  readonly message: string;
}

export type XmlScreen =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'doctype' | 'encoding' | 'malformed'; readonly issue: XmlIssue };

const lineAt = (text: string, index: number): number => {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
};

/**
 * The checks made before any XML parser sees the text (RELIABILITY.md rule 10). A document type
 * declaration is refused outright: it is the carrier of every entity-expansion ("billion laughs")
 * and external-entity attack, and B2MML never needs one. Then well-formedness, with the line.
 */
export function screenXml(text: string): XmlScreen {
  const decl = /<!\s*(DOCTYPE|ENTITY)/i.exec(text);
  if (decl) {
    return {
      ok: false,
      reason: 'doctype',
      issue: {
        line: lineAt(text, decl.index),
        element: null,
        message: `a <!${decl[1]!.toUpperCase()} declaration is not accepted (entity expansion); send the message without a DTD`,
      },
    };
  }
  const enc = /^\s*<\?xml[^>]*encoding\s*=\s*["']([^"']+)["']/i.exec(text);
  if (enc && !/^utf-?8$/i.test(enc[1]!)) {
    return {
      ok: false,
      reason: 'encoding',
      issue: { line: 1, element: null, message: `encoding '${enc[1]}' is not supported; send UTF-8` },
    };
  }
  const checked = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (checked !== true) {
    return {
      ok: false,
      reason: 'malformed',
      issue: { line: checked.err.line, element: elementIn(checked.err.msg), message: checked.err.msg },
    };
  }
  return { ok: true };
}

/** The element a parser message names (`closing tag 'Foo'`, `Element '{ns}Foo'`), if any. */
export function elementIn(message: string): string | null {
  const m =
    /Element '(?:\{[^}]*\})?([\w.-]+)'/.exec(message) ??
    /tag '([\w.:-]+)'/.exec(message) ??
    /tag mismatch: ([\w.:-]+)/.exec(message);
  return m ? m[1]! : null;
}

/** The local name of the root element, without parsing the document (it has been screened). */
export function rootElementOf(text: string): string | null {
  const re = /<([A-Za-z_][\w.:-]*)[\s/>]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const before = text.lastIndexOf('<!--', m.index);
    if (before !== -1 && text.indexOf('-->', before) > m.index) continue;
    const name = m[1]!;
    return name.includes(':') ? name.slice(name.indexOf(':') + 1) : name;
  }
  return null;
}

/** A parsed element: child elements by local name (always arrays), attributes as `@name`, text as `#text`. */
export type XmlElement = { readonly [key: string]: XmlNode[] | string | undefined };
export type XmlNode = XmlElement | string;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  removeNSPrefix: true,
  // Entities stay undecoded text (decodeXmlText below knows only the five predefined ones and
  // character references); with no DOCTYPE allowed there are no others.
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (_name, _jpath, _isLeaf, isAttribute) => !isAttribute,
});

/** Parses a screened, schema-valid document; returns the root element. */
export function parseXml(text: string): XmlElement {
  const doc = parser.parse(text) as Record<string, XmlNode[]>;
  for (const [key, value] of Object.entries(doc)) {
    if (key.startsWith('?') || key.startsWith('#')) continue;
    const root = value[0];
    return typeof root === 'string' ? { '#text': root } : (root ?? {});
  }
  return {};
}

const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeXmlText(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return PREDEFINED[e]!;
  });
}

export function children(el: XmlNode | undefined, name: string): XmlNode[] {
  if (el === undefined || typeof el === 'string') return [];
  const v = el[name];
  return Array.isArray(v) ? v : [];
}

export function child(el: XmlNode | undefined, name: string): XmlNode | undefined {
  return children(el, name)[0];
}

/** The element's text, decoded and whitespace-collapsed; `undefined` when absent or empty. */
export function textOf(el: XmlNode | undefined): string | undefined {
  if (el === undefined) return undefined;
  const raw = typeof el === 'string' ? el : typeof el['#text'] === 'string' ? el['#text'] : '';
  const t = decodeXmlText(raw).replace(/\s+/g, ' ').trim();
  return t === '' ? undefined : t;
}

export function attributeOf(el: XmlNode | undefined, name: string): string | undefined {
  if (el === undefined || typeof el === 'string') return undefined;
  const v = el[`@${name}`];
  return typeof v === 'string' ? decodeXmlText(v) : undefined;
}

/** Text escaped for element content and attribute values. */
export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** A tiny element builder: `el('ID', {}, 'x')`; children that are `null` are left out. */
export function el(
  name: string,
  attrs: Record<string, string | undefined> | null,
  ...content: (string | null | undefined)[]
): string {
  const a = Object.entries(attrs ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${escapeXml(v!)}"`)
    .join('');
  const body = content.filter((c): c is string => c !== null && c !== undefined).join('');
  return body === '' ? `<${name}${a}/>` : `<${name}${a}>${body}</${name}>`;
}

/** An element with escaped text content, or nothing when the text is absent. */
export function textEl(name: string, text: string | null | undefined): string | null {
  return text === null || text === undefined ? null : `<${name}>${escapeXml(text)}</${name}>`;
}
