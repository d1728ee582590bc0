/**
 * The XML the embedded S3 server speaks: a tiny writer for its responses, and a small strict parser for the two
 * request bodies S3 clients send as XML (CompleteMultipartUpload, DeleteObjects).
 *
 * Why not a library: the writer is a dozen lines, and the parser only needs elements and text. It builds arrays of
 * `[name, children]` pairs, never objects keyed by element names, so no body can reach `__proto__` or any other
 * property (the prototype pollution of XML-to-object libraries). DOCTYPE declarations, CDATA sections, processing
 * instructions other than the `<?xml …?>` prolog, and unknown entities are refused, so there is no entity expansion
 * either. Bodies are bounded in size by the caller.
 */

/** An element's content for {@link xmlDocument}: text, a number, a boolean, or child elements in order. */
export type XmlContent = string | number | boolean | readonly XmlChild[];
/** One child element: `[name, content]`; `undefined` content omits the element. */
export type XmlChild = readonly [name: string, content: XmlContent | undefined];

const S3_NAMESPACE = 'http://s3.amazonaws.com/doc/2006-03-01/';

/**
 * Escapes text for an XML element or attribute. A carriage return is written as a character reference: raw, every
 * XML parser would read it as a line feed (XML's end-of-line handling), and a key `a\rb` would come back as `a\nb`.
 */
export function xmlEscape(text: string): string {
  return text.replace(/[&<>"'\r]/g, (character) => ESCAPED_CHARACTER[character] ?? character);
}

const ESCAPED_CHARACTER: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\r': '&#13;',
};

/**
 * A complete S3 XML document: the prolog and `root` in S3's namespace.
 *
 * @example
 * ```ts
 * xmlDocument('CopyObjectResult', [['ETag', '"abc"'], ['LastModified', date.toISOString()]]);
 * ```
 */
export function xmlDocument(root: string, children: readonly XmlChild[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${S3_NAMESPACE}">${renderChildren(children)}</${root}>`;
}

function renderChildren(children: readonly XmlChild[]): string {
  return children
    .map(([name, content]) => {
      if (content === undefined) return '';
      const inner = typeof content === 'object' ? renderChildren(content) : xmlEscape(String(content));
      return `<${name}>${inner}</${name}>`;
    })
    .join('');
}

/** A parsed element: its name (namespace prefix removed), its text, and its child elements in order. */
export interface XmlElement {
  readonly name: string;
  readonly text: string;
  readonly children: readonly XmlElement[];
}

/** Thrown for anything that is not well-formed, plain XML. */
export class XmlSyntaxError extends Error {
  public constructor(message: string) {
    super(message);
    this.name = 'XmlSyntaxError';
  }
}

/** The first child element named `name`. */
export function childNamed(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((child) => child.name === name);
}

/**
 * Parses a small XML document into its root element. Strict: one root, matching tags, only the five predefined
 * entities and character references, comments allowed; no DOCTYPE, CDATA or processing instructions. Throws
 * {@link XmlSyntaxError}.
 */
export function parseXml(text: string): XmlElement {
  const source = text.replace(/^\uFEFF/, '');
  let position = 0;
  const fail = (what: string): never => {
    throw new XmlSyntaxError(`${what} at offset ${position}`);
  };
  const skipMisc = (): void => {
    for (;;) {
      WHITESPACE.lastIndex = position;
      WHITESPACE.exec(source);
      position = WHITESPACE.lastIndex;
      if (source.startsWith('<!--', position)) {
        const end = source.indexOf('-->', position + 4);
        if (end === -1) fail('unterminated comment');
        position = end + 3;
        continue;
      }
      return;
    }
  };

  if (source.startsWith('<?xml', position)) {
    const end = source.indexOf('?>', position);
    if (end === -1) fail('unterminated XML declaration');
    position = end + 2;
  }
  skipMisc();
  const stack: { name: string; text: string; children: XmlElement[] }[] = [];
  let root: XmlElement | undefined;
  while (root === undefined) {
    if (position >= source.length) fail('unexpected end of document');
    if (source[position] !== '<') {
      const end = source.indexOf('<', position);
      if (stack.length === 0) fail('text outside the root element');
      const top = stack[stack.length - 1];
      if (top !== undefined) top.text += decodeEntities(source.slice(position, end === -1 ? source.length : end));
      position = end === -1 ? source.length : end;
      continue;
    }
    if (source.startsWith('<!--', position)) {
      skipMisc();
      continue;
    }
    if (source.startsWith('<!', position) || source.startsWith('<?', position)) {
      fail('DOCTYPE, CDATA and processing instructions are not accepted');
    }
    TAG.lastIndex = position;
    const tag = TAG.exec(source);
    if (tag === null) fail('malformed tag');
    const [whole, closing, qualified, , selfClosing] = tag as RegExpExecArray;
    const name = (qualified ?? '').replace(/^[^:]*:/, '');
    position += whole.length;
    if (closing === '/') {
      const open = stack.pop();
      if (open === undefined || open.name !== name || selfClosing === '/') fail(`unexpected </${name}>`);
      const element: XmlElement = { name, text: open?.text ?? '', children: open?.children ?? [] };
      const parent = stack[stack.length - 1];
      if (parent === undefined) root = element;
      else parent.children.push(element);
      continue;
    }
    if (selfClosing === '/') {
      const element: XmlElement = { name, text: '', children: [] };
      const parent = stack[stack.length - 1];
      if (parent === undefined) root = element;
      else parent.children.push(element);
      continue;
    }
    stack.push({ name, text: '', children: [] });
  }
  skipMisc();
  if (position !== source.length) fail('content after the root element');
  return root;
}

/** Sticky (`y`): matched at `lastIndex` in place, without slicing the document at every tag. */
const WHITESPACE = /\s*/y;
const TAG =
  /<(\/?)([A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/y;

const PREDEFINED_ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&([^;&\s]{1,10});|&/g, (match, entity: string | undefined) => {
    if (entity === undefined) throw new XmlSyntaxError('a bare "&" in text');
    if (Object.hasOwn(PREDEFINED_ENTITIES, entity)) return PREDEFINED_ENTITIES[entity] ?? '';
    const reference = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(entity);
    if (reference === null) throw new XmlSyntaxError(`unknown entity ${match}`);
    const codePoint = Number.parseInt(reference[1] ?? reference[2] ?? '', reference[1] === undefined ? 10 : 16);
    if (codePoint > 0x10ffff || codePoint === 0) throw new XmlSyntaxError(`invalid character reference ${match}`);
    return String.fromCodePoint(codePoint);
  });
}
