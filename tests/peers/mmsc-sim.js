// A small MMSC for tests, speaking MM7 (SOAP 1.1 with attachments) on its own MIME and XML stack:
// emailjs-mime-parser (the MIME tree and headers) and fast-xml-parser (the SOAP and SMIL), independent of
// the gateway's. Listens on 127.0.0.1:$MMSC_PORT (0 = any free port); stdout: one JSON object per line, the
// first {"event":"listening","port":N}. Any POST path is the MM7 endpoint: SubmitReq is checked (problems are
// answered with fault 2007), answered with SubmitRsp 1000, and followed by a DeliveryReportReq to the VASP
// when it asks for one; any other request gets fault 4003.
// Env: MMSC_USERNAME / MMSC_PASSWORD (Basic auth, when set), FAULT_EVERY + FAULT_CODE (every Nth SubmitReq
// gets that fault, default 3100), FAULT_TO ("number:code,..."), FAULT_ALL (code), DELAY_MS (before each
// answer), VASP_URL / VASP_USERNAME / VASP_PASSWORD, REPORT_STATUS (Retrieved), REPORT_DELAY_MS (0),
// MM7_NS (namespace of DeliverReq and reports not tied to a submit: REL-6-MM7-1-4).
// Commands on stdin, one JSON object per line:
//   {"cmd":"vasp","url":...,"username":...,"password":...}          where reports and MO go (event vasp_set)
//   {"cmd":"faults","every":N,"code":C,"all":C}                       change FAULT_EVERY/CODE/ALL (faults_set)
//   {"cmd":"report","messageId":...,"status":"Rejected","recipient":...,"sender":...,"transactionId":...}
//   {"cmd":"deliver","from":...,"to":...,"subject":...,"linkedId":...,"transactionId":...,
//    "parts":[{"contentType":...,"base64":...,"name":...}],"content":"mixed"|"related"}     (an MO DeliverReq)
//   {"cmd":"readreply","messageId":...,"status":"Read","recipient":...,"sender":...}
//   {"cmd":"raw","contentType":...,"body":<base64>}                  any body, posted as is
// Each POST to the VASP logs <cmd>_sent: httpStatus, response (element name), statusCode, txEchoed, elapsedMs.
'use strict';
const http = require('http');
const crypto = require('crypto');
const readline = require('readline');
const {MimeNode} = require('emailjs-mime-parser');
const {XMLParser} = require('fast-xml-parser');

const env = process.env;
const SOAP_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
const MM7_BASE = 'http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/';
const MM7_RELEASE = /^REL-(5)-MM7-1-[0-5]$|^REL-(6)-MM7-1-[0-4]$/;
const VERSION_OF = {5: '5.3.0', 6: '6.8.0'};
const ORDER = ['MM7Version', 'SenderIdentification', 'Recipients', 'ServiceCode', 'LinkedID', 'MessageClass',
  'TimeStamp', 'ReplyCharging', 'EarliestDeliveryTime', 'ExpiryDate', 'DeliveryReport', 'ReadReply', 'Priority',
  'Subject', 'ChargedParty', 'ChargedPartyID', 'DistributionIndicator', 'DeliveryCondition', 'ApplicID',
  'ReplyApplicID', 'AuxApplicInfo', 'ContentClass', 'DRMContent', 'Content'];
const REQUIRED = ['MM7Version', 'SenderIdentification', 'Recipients', 'Content'];
const TEXTS = {1000: 'Success', 2000: 'Client error', 2001: 'Operation restricted', 2002: 'Address Error',
  2003: 'Address Not Found', 2004: 'Multimedia content refused', 2007: 'Message format corrupt',
  3000: 'Server Error', 3001: 'Not Possible', 3002: 'Message rejected', 3100: 'Throughput exceeded, retry later',
  4000: 'General service error', 4003: 'Unsupported operation', 4006: 'Service unavailable'};
const textFor = (code) => TEXTS[code] || TEXTS[Math.floor(code / 1000) * 1000] || 'Error';
const faults = {every: Number(env.FAULT_EVERY || 0), code: Number(env.FAULT_CODE || 3100),
  all: Number(env.FAULT_ALL || 0)};
const FAULT_TO = Object.fromEntries((env.FAULT_TO || '').split(',').filter(Boolean).map((r) => r.split(':'))
  .map(([number, code]) => [number, Number(code)]));
const DELAY_MS = Number(env.DELAY_MS || 0);
const vasp = {url: env.VASP_URL || null, username: env.VASP_USERNAME ?? null, password: env.VASP_PASSWORD ?? ''};

const log = (event) => process.stdout.write(JSON.stringify({t: Date.now(), ...event}) + '\n');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const ENTITIES = {'<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;'};
const esc = (s) => String(s ?? '').replace(/[<>&"]/g, (c) => ENTITIES[c]);
const unbracket = (s) => (s || '').trim().replace(/^cid:/i, '').replace(/^<(.*)>$/, '$1');
const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const now = () => new Date().toISOString().replace(/\.\d+/, '');
let seq = 0;
const unique = (prefix) => `${prefix}-${process.pid.toString(36)}-${(++seq).toString(36)}-${crypto.randomBytes(3)
  .toString('hex')}`;
const submitted = new Map(); // MessageID -> {ns, sender, recipients}: defaults for the report command

// ---- XML: fast-xml-parser in document order (preserveOrder), turned into {name, ns, attrs, children, text}
// with local names, resolved namespaces and string values (parseTagValue off: "0155..." stays a string)
const xmlParser = new XMLParser({preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '',
  parseTagValue: false, parseAttributeValue: false, trimValues: true});
function tree(items, scope = {}) {
  const nodes = [];
  for (const item of items) {
    const key = Object.keys(item).find((k) => k !== ':@');
    if (!key || key === '#text' || key.startsWith('?')) continue;
    const inner = {...scope};
    const attrs = {};
    for (const [name, value] of Object.entries(item[':@'] || {})) {
      if (name === 'xmlns' || name.startsWith('xmlns:')) inner[name.slice(6)] = value;
      else attrs[name.split(':').pop()] = value;
    }
    const prefix = key.includes(':') ? key.split(':')[0] : '';
    const text = item[key].filter((k) => '#text' in k).map((k) => k['#text']).join('');
    nodes.push({name: key.split(':').pop(), ns: inner[prefix] || '', attrs, children: tree(item[key], inner), text});
  }
  return nodes;
}
const parseXml = (text) => tree(xmlParser.parse(text));
const kid = (node, name) => node?.children.find((c) => c.name === name);
const textOf = (node, name) => kid(node, name)?.text ?? null;
const all = (nodes) => nodes.flatMap((n) => [n, ...all(n.children)]);
const find = (node, name) => node && all([node]).find((n) => n.name === name);
function soap(text) { // -> {envelope, tx (the TransactionID node), transactionId, body (the MM7 element)}
  const envelope = parseXml(text).find((n) => n.name === 'Envelope');
  if (!envelope) throw new Error('no SOAP Envelope');
  const tx = kid(kid(envelope, 'Header'), 'TransactionID');
  return {envelope, tx, transactionId: tx?.text ?? null, body: kid(envelope, 'Body')?.children[0]};
}

// ---- MIME: emailjs-mime-parser builds the tree and parses the headers. Bodies are decoded here from each
// node's raw lines: its own decoding folds CRLF to LF and reads base64 without a charset as UTF-8 (both corrupt
// binary media). While parsing, lone LFs stand apart from the CRLF line breaks as U+010A.
function parseMime(contentType, buf) {
  let text = buf.toString('latin1');
  const crlf = text.includes('\r\n');
  if (crlf) text = text.replace(/(?<!\r)\n/g, '\u010a');
  const root = new MimeNode();
  `Content-Type: ${contentType}\r\n\r\n${text}`.split(crlf ? '\r\n' : '\n').forEach((line) => root.writeLine(line));
  root.finalize();
  const nodes = (node) => [node, ...node.childNodes.flatMap(nodes)];
  nodes(root).forEach((node) => { node.crlf = crlf; });
  return root;
}
function bytesOf(node) {
  const at = node.raw.indexOf('\n\n');
  let body = at < 0 ? '' : node.raw.slice(at + 2);
  if (node.crlf) body = body.replace(/\n/g, '\r\n').replace(/\u010a/g, '\n');
  const cte = node.contentTransferEncoding?.value;
  if (cte === 'base64') return Buffer.from(body, 'base64');
  if (cte === 'quoted-printable') {
    body = body.replace(/=\r?\n/g, '').replace(/=([0-9a-f]{2})/gi, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
  }
  return Buffer.from(body, 'latin1');
}
const header = (node, name) => node.headers[name]?.[0]?.value ?? null;
const idOf = (node) => unbracket(header(node, 'content-id')) || null;
const cid = (ref) => { try { return decodeURIComponent(unbracket(ref)); } catch { return unbracket(ref); } };
const leaves = (node) => (node.childNodes.length ? node.childNodes.flatMap(leaves) : [node]);

// ---- SubmitReq checks (problems are pushed onto `problems`); returns the fields of the submit event
const ADDRESS = ['Number', 'ShortCode', 'RFC2822Address'];
const address = (a) => ({type: a.name, value: a.text, ...(a.attrs.displayOnly && {displayOnly: a.attrs.displayOnly})});
function checkSubmit(req, tx, mime, soapPart, problems) {
  const names = req.children.map((c) => c.name);
  const release = req.ns.startsWith(MM7_BASE) ? req.ns.slice(MM7_BASE.length) : null;
  const match = release && release.match(MM7_RELEASE);
  const mm7Version = textOf(req, 'MM7Version');
  const expected = match && VERSION_OF[match[1] || match[2]];
  if (!match) problems.push(`unknown MM7 namespace ${req.ns || '(none)'}`);
  else if (mm7Version && mm7Version !== expected) {
    problems.push(`MM7Version ${mm7Version} does not match namespace ${release} (expects ${expected})`);
  }
  if (!tx) problems.push('missing TransactionID in the SOAP Header');
  else if (!['1', 'true'].includes(tx.attrs.mustUnderstand)) problems.push('TransactionID lacks mustUnderstand="1"');
  if (tx && tx.ns !== req.ns) problems.push(`TransactionID namespace ${tx.ns || '(none)'} differs from ${req.ns}`);
  REQUIRED.filter((n) => !names.includes(n)).forEach((n) => problems.push(`missing ${n}`));
  if (names.includes('MM7Version') && names[0] !== 'MM7Version') problems.push('MM7Version is not the first child');
  let last = -1;
  for (const name of names) {
    const at = ORDER.indexOf(name);
    if (at < 0) problems.push(`unknown element ${name}`);
    else if (at < last) problems.push(`out of order: ${name} after ${ORDER[last]}`);
    else last = at;
  }
  const recipients = (kid(req, 'Recipients')?.children || []).flatMap((field) =>
    field.children.filter((a) => ADDRESS.includes(a.name)).map((a) => ({field: field.name, ...address(a)})));
  if (kid(req, 'Recipients') && !recipients.length) problems.push('Recipients holds no To, Cc or Bcc address');
  const identification = kid(req, 'SenderIdentification');
  const from = kid(identification, 'SenderAddress'); // a typed address, or bare text (5.1.0)
  const typed = from?.children.find((c) => ADDRESS.includes(c.name));
  const sender = typed ? address(typed) : from?.text ? {type: 'text', value: from.text} : null;
  const report = textOf(req, 'DeliveryReport');
  const info = {namespace: release || req.ns, mm7Version, vaspId: textOf(identification, 'VASPID'),
    vasId: textOf(identification, 'VASID'), sender: sender?.value ?? null, senderType: sender?.type ?? null,
    recipients: recipients.map((r) => r.value), recipientTypes: recipients, subject: textOf(req, 'Subject'),
    expiryDate: textOf(req, 'ExpiryDate'), deliveryReport: report === null ? null : ['true', '1'].includes(report),
    linkedId: textOf(req, 'LinkedID'), elements: names, href: kid(req, 'Content')?.attrs.href ?? null,
    contentType: null, smilRefsOk: null, smilSrcs: null, parts: []};
  if (!info.href) return info;
  const content = mime?.childNodes.find((c) => c !== soapPart && idOf(c) === cid(info.href));
  if (!content) {
    problems.push(`Content href ${info.href} matches no MIME part`);
    return info;
  }
  info.contentType = content.contentType.value;
  const parts = leaves(content);
  info.parts = parts.map((p) => {
    const bytes = bytesOf(p);
    return {contentType: p.contentType.value, charset: p.contentType.params?.charset ?? null, contentId: idOf(p),
      location: header(p, 'content-location'), transferEncoding: p.contentTransferEncoding?.value || null,
      size: bytes.length, sha256: sha256(bytes)};
  });
  const start = content.contentType.params?.start;
  const smil = parts.find((p) => (start ? idOf(p) === unbracket(start) : p.contentType.value === 'application/smil'));
  if (start && !smil) problems.push(`content start ${start} matches no part`);
  if (smil) { // every src: cid:<Content-ID> or a Content-Location
    info.smilSrcs = all(parseXml(bytesOf(smil).toString('utf8'))).map((n) => n.attrs.src).filter(Boolean);
    const missing = info.smilSrcs.filter((src) => !parts.some((p) => (/^cid:/i.test(src) ? idOf(p) === cid(src)
      : header(p, 'content-location') === src)));
    missing.forEach((src) => problems.push(`SMIL src ${src} matches no part`));
    info.smilRefsOk = missing.length === 0;
  }
  return info;
}

// ---- answers
const envelope = (ns, tx, body) => '<?xml version="1.0" encoding="UTF-8"?>\n' +
  `<env:Envelope xmlns:env="${SOAP_NS}">` + (tx === null ? '' : '<env:Header>' +
  `<mm7:TransactionID xmlns:mm7="${ns}" env:mustUnderstand="1">${esc(tx)}</mm7:TransactionID></env:Header>`) +
  `<env:Body>${body}</env:Body></env:Envelope>\n`;
const status = (code, details) => `<Status><StatusCode>${code}</StatusCode>` +
  `<StatusText>${esc(textFor(code))}</StatusText>${details ? `<Details>${esc(details)}</Details>` : ''}</Status>`;
const fault = (ns, version, tx, code, details) => envelope(ns, tx, '<env:Fault>' +
  `<faultcode>env:${code < 3000 ? 'Client' : 'Server'}</faultcode><faultstring>${esc(textFor(code))}</faultstring>` +
  `<detail><RSErrorRsp xmlns="${ns}"><MM7Version>${esc(version)}</MM7Version>${status(code, details)}</RSErrorRsp>` +
  '</detail></env:Fault>');
const nsOf = (given) => (given || env.MM7_NS || 'REL-6-MM7-1-4').replace(/^(?!http)/, MM7_BASE);
const versionOf = (ns) => (ns.includes('REL-5-') ? '5.3.0' : '6.8.0');

function authorized(req) {
  if (!env.MMSC_USERNAME && !env.MMSC_PASSWORD) return [true, null];
  const given = Buffer.from((req.headers.authorization || '').replace(/^Basic\s+/i, ''), 'base64').toString();
  const [user, pass] = given.split(/:(.*)/s);
  const ok = user === (env.MMSC_USERNAME || '') && pass === (env.MMSC_PASSWORD || '');
  return [ok, req.headers.authorization ? user : null];
}

let submits = 0;
async function onRequest(req, res, body) {
  const soapAction = req.headers.soapaction ?? null;
  const [ok, username] = authorized(req);
  if (!ok) {
    log({event: 'auth_failed', path: req.url, soapAction, username});
    res.writeHead(401, {'WWW-Authenticate': 'Basic realm="mmsc-sim"', 'Content-Type': 'text/plain'});
    return res.end('authentication required\n');
  }
  const problems = [];
  let parsed = null; let mime = null; let soapPart = null;
  try {
    let xml = body.toString('utf8');
    const contentType = req.headers['content-type'] || '';
    if (/^multipart\//i.test(contentType)) { // the SOAP part: by the start parameter, else the first text/xml part
      mime = parseMime(contentType, body);
      const start = mime.contentType.params?.start;
      soapPart = (start && mime.childNodes.find((c) => idOf(c) === unbracket(start))) ||
        mime.childNodes.find((c) => c.contentType.value === 'text/xml');
      if (!soapPart) throw new Error('no SOAP part (by start, or the first text/xml part)');
      xml = bytesOf(soapPart).toString('utf8');
    }
    parsed = soap(xml);
    if (parsed.envelope.ns !== SOAP_NS) problems.push(`Envelope namespace ${parsed.envelope.ns} is not SOAP 1.1`);
  } catch (err) {
    problems.push(`unreadable request: ${err.message}`);
  }
  const operation = parsed?.body?.name ?? null;
  const ns = parsed?.body?.ns || nsOf();
  const version = textOf(parsed?.body, 'MM7Version') || versionOf(ns);
  const tx = parsed?.transactionId ?? null;
  const common = {transactionId: tx, soapAction, path: req.url};
  let answer; let info = {};
  if (operation === 'SubmitReq') {
    submits += 1;
    info = checkSubmit(parsed.body, parsed.tx, mime, soapPart, problems);
    const refused = info.recipients.map((r) => FAULT_TO[r]).find(Boolean);
    const every = faults.every && submits % faults.every === 0 ? faults.code : 0;
    const code = problems.length ? 2007 : faults.all || refused || every || 1000;
    if (code === 1000) {
      info.messageId = unique('MMSC');
      submitted.set(info.messageId, {ns, sender: info.sender, recipients: info.recipients});
      answer = [200, envelope(ns, tx, `<SubmitRsp xmlns="${ns}"><MM7Version>${esc(version)}</MM7Version>` +
        `${status(1000)}<MessageID>${info.messageId}</MessageID></SubmitRsp>`)];
    } else answer = [500, fault(ns, version, tx, code, problems.join('; '))];
    log({event: 'submit', ok: problems.length === 0, problems, ...common, ...info, messageId: info.messageId ?? null,
      status: code, httpStatus: answer[0], delayMs: DELAY_MS});
  } else {
    const code = problems.length ? 2007 : 4003;
    answer = [500, fault(ns, version, tx, code, problems.join('; ') || `${operation} is not supported`)];
    log({event: operation ? 'unsupported' : 'bad_request', operation, problems, ...common, status: code});
  }
  if (DELAY_MS) await sleep(DELAY_MS);
  if (req.socket.destroyed) log({event: 'client_gone', operation, transactionId: tx});
  res.writeHead(answer[0], {'Content-Type': 'text/xml; charset=utf-8'});
  res.end(answer[1]);
  if (answer[0] === 200 && info.deliveryReport) {
    const reports = () => info.recipients.forEach((to) => report({messageId: info.messageId, recipient: to}));
    setTimeout(reports, Number(env.REPORT_DELAY_MS || 0));
  }
}

// ---- to the VASP
function addressXml(value) {
  const type = String(value).includes('@') ? 'RFC2822Address' : /^\d{3,8}$/.test(value) ? 'ShortCode' : 'Number';
  return `<${type}>${esc(value)}</${type}>`;
}
async function post(kind, contentType, body, tx, extra = {}) {
  const started = Date.now();
  const done = (fields) => log({event: `${kind}_sent`, ...extra, transactionId: tx, ...fields,
    elapsedMs: Date.now() - started});
  if (!vasp.url) return done({error: 'no VASP URL (VASP_URL or the vasp command)'});
  const headers = {'Content-Type': contentType, SOAPAction: '""'};
  if (vasp.username !== null) {
    headers.Authorization = `Basic ${Buffer.from(`${vasp.username}:${vasp.password}`).toString('base64')}`;
  }
  try {
    const res = await fetch(vasp.url, {method: 'POST', headers, body, signal: AbortSignal.timeout(30000)});
    const text = await res.text();
    try {
      const got = soap(text);
      done({httpStatus: res.status, response: got.body?.name ?? null,
        statusCode: Number(find(got.body, 'StatusCode')?.text) || null,
        statusText: find(got.body, 'StatusText')?.text ?? null, txEchoed: got.transactionId === tx});
    } catch (err) {
      done({httpStatus: res.status, response: null, statusCode: null, txEchoed: false, answer: text.slice(0, 500)});
    }
  } catch (err) {
    done({error: String(err.message || err)});
  }
}
function report(cmd, element = 'DeliveryReportReq', kind = 'report') {
  const known = submitted.get(cmd.messageId) || {};
  const ns = cmd.ns ? nsOf(cmd.ns) : known.ns || nsOf();
  const tx = cmd.transactionId || unique('mmsc-tx');
  const mmStatus = cmd.status || (kind === 'report' ? env.REPORT_STATUS || 'Retrieved' : 'Read');
  const recipient = cmd.recipient ?? known.recipients?.[0];
  const sender = cmd.sender ?? known.sender;
  const when = kind === 'report' ? 'Date' : 'TimeStamp';
  const xml = envelope(ns, tx, `<${element} xmlns="${ns}"><MM7Version>${versionOf(ns)}</MM7Version>` +
    `<MMSRelayServerID>mmsc-sim</MMSRelayServerID><MessageID>${esc(cmd.messageId)}</MessageID>` +
    `<Recipient>${addressXml(recipient)}</Recipient><Sender>${addressXml(sender)}</Sender><${when}>${now()}</${when}>` +
    `<MMStatus>${esc(mmStatus)}</MMStatus><StatusText>${esc(cmd.statusText || mmStatus)}</StatusText></${element}>`);
  return post(kind, 'text/xml; charset=utf-8', Buffer.from(xml), tx,
    {messageId: cmd.messageId, mmStatus, recipient, sender});
}
const mimePart = (headers, body) => Object.entries(headers).filter(([, v]) => v)
  .map(([k, v]) => `${k}: ${v}\r\n`).join('') + `\r\n${body}`;
const multipart = (boundary, parts) => parts.map((p) => `--${boundary}\r\n${p}\r\n`).join('') + `--${boundary}--\r\n`;
function smilFor(parts) { // one par per slide: at most one image or video, one text, one audio
  const slides = [];
  for (const p of parts) {
    const kind = (p.contentType.match(/^(image|video|audio)\//) || [null, 'text'])[1].replace('image', 'img');
    const slot = kind === 'video' ? 'img' : kind;
    if (!slides.length || slides[slides.length - 1][slot]) slides.push({});
    const region = kind === 'audio' ? '' : ` region="${kind === 'text' ? 'Text' : 'Image'}"`;
    slides[slides.length - 1][slot] = `<${kind} src="cid:${p.id}"${region}/>`;
  }
  return '<smil><head><layout><root-layout width="320" height="480"/>' +
    '<region id="Image" left="0" top="0" width="320" height="320" fit="meet"/>' +
    '<region id="Text" left="0" top="320" width="320" height="160" fit="scroll"/></layout></head><body>' +
    slides.map((s) => `<par dur="5000ms">${Object.values(s).join('')}</par>`).join('') + '</body></smil>';
}
function deliver(cmd) { // an MO: SOAP part + the content as multipart/mixed, or related with a generated SMIL
  const ns = nsOf(cmd.ns);
  const tx = cmd.transactionId || unique('mmsc-tx');
  const [outer, inner] = [unique('mm7-outer'), unique('mm7-inner')];
  const parts = (cmd.parts || []).map((p, i) => ({...p, id: p.contentId || p.name || `part${i + 1}`}));
  const related = cmd.content === 'related';
  const media = parts.map((p) => mimePart({'Content-Type': p.contentType, 'Content-ID': `<${p.id}>`,
    'Content-Location': p.name, 'Content-Transfer-Encoding': 'base64'},
  (p.base64.replace(/\s/g, '').match(/.{1,76}/g) || []).join('\r\n')));
  if (related) media.unshift(mimePart({'Content-Type': 'application/smil; charset=utf-8', 'Content-ID': '<smil>'},
    smilFor(parts)));
  const optional = (name, value) => (value ? `<${name}>${esc(value)}</${name}>` : '');
  const xml = envelope(ns, tx, `<DeliverReq xmlns="${ns}"><MM7Version>${versionOf(ns)}</MM7Version>` +
    `<MMSRelayServerID>mmsc-sim</MMSRelayServerID>${optional('LinkedID', cmd.linkedId)}` +
    `<Sender>${addressXml(cmd.from)}</Sender><Recipients><To>${addressXml(cmd.to)}</To></Recipients>` +
    `<TimeStamp>${now()}</TimeStamp>${optional('Subject', cmd.subject)}` +
    '<Content href="cid:mms-content" allowAdaptations="true"/></DeliverReq>');
  const contentType = related ? `multipart/related; type="application/smil"; start="<smil>"; boundary="${inner}"`
    : `multipart/mixed; boundary="${inner}"`;
  const body = multipart(outer, [
    mimePart({'Content-Type': 'text/xml; charset=utf-8', 'Content-ID': '<soap-start>'}, xml),
    mimePart({'Content-Type': contentType, 'Content-ID': '<mms-content>'}, multipart(inner, media)),
  ]);
  return post('deliver', `multipart/related; type="text/xml"; start="<soap-start>"; boundary="${outer}"`,
    Buffer.from(body, 'utf8'), tx, {from: cmd.from, to: cmd.to, linkedId: cmd.linkedId ?? null,
      parts: parts.map((p) => p.id)});
}

const COMMANDS = {
  vasp: (cmd) => {
    Object.assign(vasp, {url: cmd.url, username: cmd.username ?? null, password: cmd.password ?? ''});
    log({event: 'vasp_set', url: vasp.url});
  },
  faults: (cmd) => {
    for (const key of ['every', 'code', 'all']) if (cmd[key] !== undefined) faults[key] = Number(cmd[key]);
    log({event: 'faults_set', ...faults});
  },
  report: (cmd) => report(cmd),
  readreply: (cmd) => report(cmd, 'ReadReplyReq', 'readreply'),
  deliver,
  raw: (cmd) => post('raw', cmd.contentType || 'text/xml; charset=utf-8', Buffer.from(cmd.body || '', 'base64'),
    cmd.transactionId ?? null),
};
readline.createInterface({input: process.stdin}).on('line', (line) => {
  if (!line.trim()) return;
  try {
    const cmd = JSON.parse(line);
    if (!COMMANDS[cmd.cmd]) throw new Error('unknown command');
    COMMANDS[cmd.cmd](cmd);
  } catch (err) {
    log({event: 'error', detail: `${err.message}: ${line}`});
  }
}).on('close', () => process.exit(0));

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(405, {Allow: 'POST'});
    return res.end();
  }
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => onRequest(req, res, Buffer.concat(chunks)).catch((err) => {
    log({event: 'error', detail: String(err.stack || err)});
    if (!res.headersSent) res.writeHead(500, {'Content-Type': 'text/plain'});
    res.end();
  }));
});
server.listen(Number(env.MMSC_PORT || 0), '127.0.0.1', () => log({event: 'listening', port: server.address().port}));
