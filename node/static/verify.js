// "Verify this entry" (the wallet's entry page): the browser checks, with WebCrypto, that a
// ledger entry is in the ledger its territory signed, so the player need not trust the page.
//
// What the node supplies (session routes under /app/wallet/ledger/, the JSON API's DTOs): the
// entry's fields, the audit path, the newest checkpoint, the territory's public keys.
// What this script computes itself, as services/ledger hashes and signs:
//   1. entry_hash = SHA-256(prev_hash || canonical JSON of the entry)        (ledger/canonical.py)
//      canonical JSON: keys sorted, no whitespace, UTF-8, integers, null for absent values:
//      amount, created_at, credit, debit, kind, memo, ref_id, ref_type, seq, territory, xp
//   2. leaf = SHA-256(0x00 || entry_hash)                                    (ledger/merkle.py)
//   3. node = SHA-256(0x01 || left || right), up the audit path (RFC 9162 2.1.3.2)
//   4. that root == the checkpoint's root, and the checkpoint is the newest the node lists
//   5. Ed25519 signature (JWK OKP, RFC 8037; key id = first 16 hex digits of SHA-256 of the
//      raw key) over "oneheart-ledger-checkpoint-v1|<territory>|<tree_size>|<root hex>|<created_at>"
//                                                                               (ledger/keys.py)
// Every step shows what it took and what it computed; the first step that fails stops the check.
(function () {
  "use strict";

  const encoder = new TextEncoder();
  const STEPS = ["entry", "leaf", "path", "root", "signature"];
  const KEY_STORE = "oneheart:ledger-keys:";

  class Refused extends Error {}

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function unhex(text, size) {
    if (typeof text !== "string" || !/^(?:[0-9a-f]{2})*$/.test(text) || (size && text.length !== 2 * size)) {
      throw new Refused("not_hash");
    }
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
    return out;
  }

  function unbase64url(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    const raw = atob(b64);
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function concat(parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  async function sha256(...parts) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(parts)));
  }

  function int(value) {
    if (!Number.isSafeInteger(value) || value < 0) throw new Refused("bad_field");
    return String(value);
  }

  function text(value) {
    if (value === null) return "null";
    if (typeof value !== "string") throw new Refused("bad_field");
    return JSON.stringify(value); // escapes as msgspec does: \" \\ \b \f \n \r \t, \u00XX, the rest as UTF-8
  }

  // The canonical bytes of services/ledger/canonical.py, keys in sorted order.
  function canonical(entry, territory) {
    const fields = [
      ["amount", int(entry.amount)],
      ["created_at", text(entry.created_at)],
      ["credit", text(entry.credit)],
      ["debit", text(entry.debit)],
      ["kind", text(entry.kind)],
      ["memo", text(entry.memo)],
      ["ref_id", text(entry.ref_id)],
      ["ref_type", text(entry.ref_type)],
      ["seq", int(entry.seq)],
      ["territory", text(territory)],
      ["xp", int(entry.xp)],
    ];
    return "{" + fields.map(([k, v]) => JSON.stringify(k) + ":" + v).join(",") + "}";
  }

  function equal(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, (m, name) => (name in values ? String(values[name]) : m));
  }

  // --- the page ---------------------------------------------------------------------------------
  function ui(section) {
    const t = JSON.parse(document.getElementById("verify-text").textContent);
    const result = document.getElementById("verify-result");
    const items = Object.fromEntries(STEPS.map((s) => [s, section.querySelector('[data-step="' + s + '"]')]));

    function status(step, state, why) {
      const li = items[step];
      li.dataset.status = state;
      const label = li.querySelector(".step-status");
      label.textContent = t[state] + (why ? " — " + why : "");
      label.className = "step-status " + state;
    }

    function detail(step) {
      const box = items[step].querySelector(".step-detail");
      const dl = document.createElement("dl");
      dl.className = "kv";
      box.appendChild(dl);
      return {
        row(label, value, kind) {
          const dt = document.createElement("dt");
          dt.textContent = label;
          const dd = document.createElement("dd");
          const el = document.createElement(kind === "pre" ? "pre" : "code");
          el.textContent = value;
          if (kind !== "pre") el.className = "hash";
          dd.appendChild(el);
          dl.append(dt, dd);
          return dd;
        },
        note(message) {
          const p = document.createElement("p");
          p.textContent = message;
          box.appendChild(p);
        },
      };
    }

    function reset() {
      result.textContent = t.running;
      result.className = "verify-result";
      for (const s of STEPS) {
        status(s, "pending");
        items[s].querySelector(".step-detail").replaceChildren();
      }
    }

    return { t, result, items, status, detail, reset };
  }

  async function load(url, what) {
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (e) {
      throw Object.assign(new Error(what), { unreachable: what });
    }
    if (!response.ok) throw Object.assign(new Error(what), { unreachable: what + " " + response.status });
    try {
      return await response.json();
    } catch (e) {
      throw Object.assign(new Error(what), { unreachable: what });
    }
  }

  function remembered(territory) {
    try {
      return JSON.parse(localStorage.getItem(KEY_STORE + territory) || "{}") || {};
    } catch (e) {
      return {};
    }
  }

  function remember(territory, keys) {
    try { localStorage.setItem(KEY_STORE + territory, JSON.stringify(keys)); } catch (e) { /* private mode */ }
  }

  async function verify(section, page) {
    const { t } = page;
    const seq = Number(section.dataset.seq);
    const territory = section.dataset.territory;
    let current = null;

    // Each step runs in order; the first that fails names itself and the rest are not reached.
    async function step(name, run) {
      current = name;
      page.status(name, "running");
      await run(page.detail(name));
      page.status(name, "pass");
    }

    const newest = (await load(section.dataset.checkpointsUrl, "checkpoints")).items[0];
    if (!newest) throw Object.assign(new Error("checkpoints"), { unreachable: "checkpoints" });
    const proof = await load(section.dataset.proofUrl + "?tree_size=" + encodeURIComponent(newest.tree_size), "proof");
    const published = await load(section.dataset.keysUrl, "keys");
    const entry = proof.entry;
    const cp = proof.checkpoint;
    let entryHash, leaf, root;

    try {
      await step("entry", async (d) => {
        d.row(t.fields, JSON.stringify(entry, ["seq", "kind", "debit", "credit", "amount", "xp", "ref_type", "ref_id", "memo", "created_at"], 1), "pre");
        if (entry.seq !== seq) throw new Refused("wrong_entry");
        const bytes = canonical(entry, territory);
        d.row(t.canonical, bytes, "pre");
        const prev = unhex(entry.prev_hash, 32);
        d.row(t.prev_hash, entry.prev_hash);
        entryHash = await sha256(prev, encoder.encode(bytes));
        d.row(t.entry_computed, hex(entryHash));
        d.row(t.entry_given, entry.entry_hash);
        if (!equal(entryHash, unhex(entry.entry_hash, 32))) throw new Refused("entry_mismatch");
      });

      await step("leaf", async (d) => {
        leaf = await sha256(Uint8Array.of(0), entryHash);
        d.row(t.leaf_computed, hex(leaf));
        d.row(t.leaf_given, proof.leaf_hash);
        d.note(format(t.position, { index: proof.leaf_index + 1, size: proof.tree_size }));
        if (proof.leaf_index !== seq - 1) throw new Refused("wrong_entry");
        if (!equal(leaf, unhex(proof.leaf_hash, 32))) throw new Refused("leaf_mismatch");
      });

      await step("path", async (d) => {
        // RFC 9162 2.1.3.2: fn is the leaf's index, sn the last index; both climb a level per hash.
        const size = proof.tree_size;
        if (!Number.isSafeInteger(size) || size !== cp.tree_size || proof.leaf_index >= size) throw new Refused("path_shape");
        let fn = proof.leaf_index, sn = size - 1, r = leaf;
        proof.audit_path.forEach((h) => unhex(h, 32));
        for (let i = 0; i < proof.audit_path.length; i++) {
          if (sn === 0) throw new Refused("path_shape");
          const p = unhex(proof.audit_path[i], 32);
          let label;
          if (fn % 2 === 1 || fn === sn) {
            r = await sha256(Uint8Array.of(1), p, r);
            label = t.level_left;
            if (fn % 2 === 0) {
              while (fn !== 0 && fn % 2 === 0) { fn = fn / 2; sn = Math.floor(sn / 2); }
            }
          } else {
            r = await sha256(Uint8Array.of(1), r, p);
            label = t.level_right;
          }
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
          const dd = d.row(format(label, { level: i + 1 }), proof.audit_path[i]);
          dd.dataset.level = String(i + 1);
          d.row(t.result_hash, hex(r));
        }
        if (sn !== 0) throw new Refused("path_shape");
        root = r;
      });

      await step("root", async (d) => {
        d.row(t.root_computed, hex(root));
        d.row(t.root_given, cp.root);
        d.note(format(t.checkpoint, { size: cp.tree_size, when: new Date(cp.created_at).toLocaleString(document.documentElement.lang) }));
        const same = ["tree_size", "root", "signature", "key_id", "created_at"].every((k) => cp[k] === newest[k]);
        if (!same) throw new Refused("not_newest");
        if (!equal(root, unhex(cp.root, 32))) throw new Refused("root_mismatch");
      });

      await step("signature", async (d) => {
        const jwk = (published.keys || []).find((k) => k.kid === cp.key_id);
        if (!jwk || jwk.kty !== "OKP" || jwk.crv !== "Ed25519") throw new Refused("no_key");
        d.row(format(t.key, { kid: jwk.kid }), jwk.x);
        const raw = unbase64url(jwk.x);
        if (raw.length !== 32 || hex(await sha256(raw)).slice(0, 16) !== jwk.kid) throw new Refused("key_id_bad");
        const message = ["oneheart-ledger-checkpoint-v1", territory, String(cp.tree_size), cp.root, cp.created_at].join("|");
        d.row(t.message, message, "pre");
        d.row(t.signature, cp.signature);
        let key;
        try {
          key = await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
        } catch (e) {
          throw new Refused("unsupported");
        }
        const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, unhex(cp.signature, 64), encoder.encode(message));
        if (!ok) throw new Refused("signature_bad");
        // Trust on first use: keys are never withdrawn, so one this browser saw must stay the same.
        const seen = remembered(territory);
        if (seen[jwk.kid] && seen[jwk.kid].x !== jwk.x) throw new Refused("key_changed");
        const gone = Object.keys(seen).filter((kid) => !(published.keys || []).some((k) => k.kid === kid));
        if (gone.length) d.note(format(t.key_gone, { kids: gone.join(", ") }));
        if (seen[jwk.kid]) {
          d.note(format(t.key_known, { when: new Date(seen[jwk.kid].first_seen).toLocaleDateString(document.documentElement.lang) }));
        } else {
          d.note(t.key_new);
          seen[jwk.kid] = { x: jwk.x, first_seen: new Date().toISOString() };
          remember(territory, seen);
        }
      });
    } catch (err) {
      const why = err instanceof Refused ? (t[err.message] || err.message) : String(err && err.message || err);
      page.status(current, "fail", why);
      for (const s of STEPS.slice(STEPS.indexOf(current) + 1)) page.status(s, "skipped");
      const n = STEPS.indexOf(current) + 1;
      const title = document.getElementById("step-" + current + "-title").textContent;
      page.result.textContent = format(t.failed_at, { step: n, title: title });
      page.result.className = "verify-result fail";
      section.dataset.outcome = "fail";
      section.dataset.failedStep = current;
      return;
    }
    page.result.textContent = t.all_passed;
    page.result.className = "verify-result pass";
    section.dataset.outcome = "pass";
  }

  document.addEventListener("DOMContentLoaded", () => {
    const section = document.getElementById("verify");
    const button = document.getElementById("verify-run");
    if (!section || !button) return;
    const page = ui(section);
    button.disabled = false;
    button.addEventListener("click", async () => {
      button.disabled = true;
      delete section.dataset.outcome;
      delete section.dataset.failedStep;
      page.reset();
      try {
        await verify(section, page);
      } catch (err) {
        page.result.textContent = format(page.t.unreachable, { what: err.unreachable || String(err.message || err) });
        page.result.className = "verify-result fail";
        section.dataset.outcome = "error";
      } finally {
        button.disabled = false;
      }
    });
    if (location.hash === "#verify") button.focus();
  });
})();
