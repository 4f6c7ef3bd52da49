-- Prosody 0.12 for frontdesk: the parts that matter, to merge into your prosody.cfg.lua.
-- Needs Debian's prosody-modules (mod_privilege). Tested here with Prosody 0.12 from Debian
-- bookworm: frontdesk picks the XEP-0356 roster rung (urn:xmpp:privilege:2) by itself.

plugin_paths = { "/usr/lib/prosody/modules" }    -- where prosody-modules installs

-- Read sockets 8 KB at a time (the size of LuaSocket's buffer) instead of the 4 KB default.
-- With 4 KB, whenever frontdesk has sent more than that, Prosody 0.12 pauses reading the
-- component link until its event loop finds no socket ready; with many visitors connecting
-- that took seconds, and every join and roster change waited (docs/operations.md, Prosody).
network_default_read_size = 8192

-- Lua's generational garbage collector instead of Prosody 0.12's incremental default: with
-- 10,000 visitors present Prosody spent two thirds of its CPU collecting (docs/operations.md).
gc = { mode = "generational" }

-- The component port: loopback only; frontdesk runs on this machine.
component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }

modules_enabled = {
	-- ... your usual modules ...
	"bosh";        -- the widget connects over BOSH at /http-bind
	"privilege";   -- XEP-0356: frontdesk writes visitors into staff rosters
}

-- Staff accounts.
VirtualHost "example.com"
	privileged_entities = {
		["chat.example.com"] = {
			roster = "both";        -- put visitors into staff rosters, and remove them
			message = "outgoing";
			presence = "roster";    -- see staff presence (who is available for offers)
		};
	}

-- Visitors: anonymous logins from the website.
VirtualHost "anon.example.com"
	authentication = "anonymous"
	allow_anonymous_s2s = false

-- frontdesk itself. frontdesk.toml: [component] jid = "chat.example.com",
-- server = "127.0.0.1:5347", and the same secret. No [roster] section is needed.
Component "chat.example.com"
	component_secret = "change-this-component-secret"
	modules_enabled = { "privilege" }
