// A small SMSC for tests, on the npm `smpp` package (an SMPP stack independent of the gateway's).
// Listens on 127.0.0.1:$SMSC_PORT (0 = any free port); stdout: one JSON object per line, the first
// {"event":"listening","port":N}. Commands on stdin, one JSON object per line:
//   {"cmd":"mo","from":"...","to":"...","text":"..."}   an MO (split into UDH segments when long; "sar":true
//                                                        for SAR TLVs instead of a UDH)
//   {"cmd":"receipt","id":"...","stat":"UNDELIV"}       a receipt for a message id
//   {"cmd":"enquire_link"}                               an enquire_link to every bound session
//   {"cmd":"drop"}                                       destroy every client socket
// Env: SMSC_SYSTEM_ID, SMSC_PASSWORD, THROTTLE_EVERY (every Nth submit_sm gets ESME_RTHROTTLED),
// RECEIPT_STATUS (DELIVRD), RECEIPT_DELAY_MS, RECEIPT_TLVS (1: also receipted_message_id/message_state),
// ID_FORMAT (hex | decimal | mixed: hex in submit_sm_resp, decimal in receipts), REJECT_TO ("number:status,..."
// answers submit_sm to that number with that command_status), RESP_DELAY_MS (before each submit_sm_resp),
// SMSC_QUIET=1 (no submit/receipt events, for benchmarks).
'use strict';
const smpp = require('smpp');
const readline = require('readline');

const env = process.env;
const SYSTEM_ID = env.SMSC_SYSTEM_ID || 'mmsgate';
const PASSWORD = env.SMSC_PASSWORD || 'secret';
const THROTTLE_EVERY = Number(env.THROTTLE_EVERY || 0);
const RECEIPT_STATUS = env.RECEIPT_STATUS || 'DELIVRD';
const RECEIPT_DELAY_MS = Number(env.RECEIPT_DELAY_MS || 0);
const RECEIPT_TLVS = (env.RECEIPT_TLVS || '1') === '1';
const ID_FORMAT = env.ID_FORMAT || 'hex';
const QUIET = env.SMSC_QUIET === '1';
const RESP_DELAY_MS = Number(env.RESP_DELAY_MS || 0);
const REJECT = Object.fromEntries((env.REJECT_TO || '').split(',').filter(Boolean).map((r) => r.split(':'))
  .map(([number, status]) => [number, Number(status)]));
const STATES = {DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8};
const MAX_RESENDS = 3;

const log = (event) => process.stdout.write(JSON.stringify({t: Date.now(), ...event}) + '\n');
let submits = 0;
let inflight = 0;
let nextId = 0x5eed0000;
const partial = new Map(); // "source ref" -> {total, parts}
const waiting = []; // deliver_sm to send once a receiving session is bound

function receiver() {
  return server.sessions.find((s) => s.mode === 'transceiver' || s.mode === 'receiver');
}

function deliver(pdu, what, attempt = 0) {
  const session = receiver();
  if (!session) return waiting.push([pdu, what]);
  session.deliver_sm(pdu, (resp) => {
    if (!QUIET || resp.command_status) log({...what, status: resp.command_status, attempt});
    if (resp.command_status && attempt < MAX_RESENDS) setTimeout(() => deliver(pdu, what, attempt + 1), 100);
  });
}

function sendReceipt(id, stat, submitted) {
  const text = `id:${id} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} submit date:${stamp(submitted)} ` +
    `done date:${stamp(new Date())} stat:${stat} err:${stat === 'DELIVRD' ? '000' : '001'} text:`;
  const pdu = {esm_class: 0x04, data_coding: 0, short_message: Buffer.from(text, 'ascii')};
  if (RECEIPT_TLVS) Object.assign(pdu, {receipted_message_id: id, message_state: STATES[stat] || 7});
  deliver(pdu, {event: 'receipt', id, stat});
}

const stamp = (d) => d.toISOString().replace(/\D/g, '').slice(2, 12);

function sendMo(from, to, text, sar) {
  const gsm = smpp.encodings.ASCII.match(text);
  const body = gsm ? smpp.encodings.ASCII.encode(text) : smpp.encodings.UCS2.encode(text);
  const limit = (body.length <= (gsm ? 160 : 140)) ? body.length : (gsm ? 153 : 134);
  const chunks = [];
  for (let at = 0; at < body.length;) {
    let end = Math.min(at + limit, body.length);
    if (end < body.length && gsm && body[end - 1] === 0x1b) end -= 1; // never split ESC from its character
    if (end < body.length && !gsm && (body.readUInt16BE(end - 2) & 0xfc00) === 0xd800) end -= 2; // nor a pair
    chunks.push(body.subarray(at, end));
    at = end;
  }
  const ref = Math.floor(Math.random() * 256);
  chunks.forEach((chunk, i) => {
    const many = chunks.length > 1;
    const udh = many && !sar ? Buffer.from([5, 0, 3, ref, chunks.length, i + 1]) : Buffer.alloc(0);
    const pdu = {
      source_addr: from, source_addr_ton: 1, source_addr_npi: 1, destination_addr: to,
      esm_class: udh.length ? 0x40 : 0, data_coding: gsm ? 0 : 8, short_message: Buffer.concat([udh, chunk]),
    };
    if (many && sar) {
      Object.assign(pdu, {sar_msg_ref_num: ref, sar_total_segments: chunks.length, sar_segment_seqnum: i + 1});
    }
    deliver(pdu, {event: 'mo', from, to, segment: i + 1, total: chunks.length});
  });
}

function onSubmit(session, pdu) {
  const sm = pdu.short_message || {};
  const concat = (sm.udh || []).find((ie) => ie[0] === 0x00 || ie[0] === 0x08);
  const udh = concat && (concat[0] === 0 ? {ref: concat[2], total: concat[3], seq: concat[4]}
    : {ref: concat.readUInt16BE(2), total: concat[4], seq: concat[5]});
  const info = {
    text: typeof sm.message === 'string' ? sm.message : null, data_coding: pdu.data_coding,
    esm_class: pdu.esm_class, source: pdu.source_addr, source_ton: pdu.source_addr_ton,
    source_npi: pdu.source_addr_npi, to: pdu.destination_addr, dest_ton: pdu.dest_addr_ton,
    dest_npi: pdu.dest_addr_npi, registered_delivery: pdu.registered_delivery, validity_period: pdu.validity_period,
    ...(udh || {}), seqnum: pdu.sequence_number,
  };
  submits += 1;
  info.inflight = ++inflight; // submit_sm received and not yet answered, this one included
  if (!session.mode || session.mode === 'receiver') {
    return answer(session, pdu, info, {command_status: smpp.ESME_RINVBNDSTS});
  }
  if (THROTTLE_EVERY && submits % THROTTLE_EVERY === 0) {
    return answer(session, pdu, info, {command_status: smpp.ESME_RTHROTTLED});
  }
  if (REJECT[pdu.destination_addr]) return answer(session, pdu, info, {command_status: REJECT[pdu.destination_addr]});
  const n = nextId++;
  const hexId = n.toString(16).toUpperCase().padStart(10, '0');
  const ids = {hex: [hexId, hexId], decimal: [String(n), String(n)], mixed: [hexId, String(n)]}[ID_FORMAT];
  answer(session, pdu, info, {message_id: ids[0]});
  if (udh && udh.total > 1) {
    const key = `${pdu.source_addr} ${udh.ref}`;
    const entry = partial.get(key) || {total: udh.total, parts: {}};
    entry.parts[udh.seq] = info.text;
    partial.set(key, entry);
    if (Object.keys(entry.parts).length === entry.total) {
      partial.delete(key);
      const text = Array.from({length: entry.total}, (_, i) => entry.parts[i + 1]).join('');
      log({event: 'complete', ref: udh.ref, total: udh.total, text});
    }
  }
  if (pdu.registered_delivery & 0x03) {
    const submitted = new Date();
    setTimeout(() => sendReceipt(ids[1], RECEIPT_STATUS, submitted), RECEIPT_DELAY_MS);
  }
}

function answer(session, pdu, info, options) {
  const send = () => {
    inflight -= 1;
    session.send(pdu.response(options));
    if (!QUIET || options.command_status) {
      log({event: 'submit', status: options.command_status || 0, message_id: options.message_id || null, ...info});
    }
  };
  if (RESP_DELAY_MS) {
    log({event: 'submit_held', text: info.text, inflight: info.inflight});
    setTimeout(send, RESP_DELAY_MS);
  }
  else send();
}

function onBind(session, pdu, mode) {
  const status = pdu.system_id !== SYSTEM_ID ? smpp.ESME_RINVSYSID
    : pdu.password !== PASSWORD ? smpp.ESME_RINVPASWD : 0;
  session.send(pdu.response({command_status: status, system_id: 'smsc-sim'}));
  log({event: 'bind', mode, system_id: pdu.system_id, ok: status === 0, status});
  if (status) return session.close();
  session.mode = mode;
  if (mode !== 'transmitter') waiting.splice(0).forEach(([p, what]) => deliver(p, what));
}

const server = smpp.createServer((session) => {
  for (const mode of ['transceiver', 'transmitter', 'receiver']) {
    session.on(`bind_${mode}`, (pdu) => onBind(session, pdu, mode));
  }
  session.on('submit_sm', (pdu) => onSubmit(session, pdu));
  session.on('enquire_link', (pdu) => {
    session.send(pdu.response());
    log({event: 'enquire_link', mode: session.mode || null});
  });
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    log({event: 'unbind', mode: session.mode || null});
    session.close();
  });
  session.on('unknown', (pdu) => session.send(pdu.response()));
  session.on('error', () => {}); // a client that vanishes: its 'close' follows
});

// keep validity_period as the client wrote it (the package would turn it into a Date)
delete smpp.commands.submit_sm.params.validity_period.filter;

readline.createInterface({input: process.stdin}).on('line', (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  if (cmd.cmd === 'mo') sendMo(cmd.from, cmd.to, cmd.text, cmd.sar);
  else if (cmd.cmd === 'receipt') sendReceipt(cmd.id, cmd.stat || 'DELIVRD', new Date());
  else if (cmd.cmd === 'enquire_link') {
    server.sessions.filter((s) => s.mode).forEach((s) => s.enquire_link({}, (resp) => {
      log({event: 'enquire_link_resp', mode: s.mode, status: resp.command_status});
    }));
  } else if (cmd.cmd === 'drop') {
    log({event: 'drop', sessions: server.sessions.length});
    server.sessions.slice().forEach((s) => s.destroy());
  } else log({event: 'error', detail: `unknown command ${line}`});
}).on('close', () => process.exit(0));

server.listen(Number(env.SMSC_PORT || 0), '127.0.0.1', () => {
  log({event: 'listening', port: server.address().port});
});
