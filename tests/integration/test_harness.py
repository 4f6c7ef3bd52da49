"""The harness itself against ejabberd alone: logins work the way the other tests assume."""

from helpers import NS_PING, attr, kind


async def test_anonymous_visitor_gets_a_random_jid(clients, ejabberd):
    a = await clients.visitor("a")
    b = await clients.visitor("b")
    assert a.boundjid.domain == ejabberd.anon_host and a.boundjid.user and a.boundjid.resource
    assert a.boundjid.bare != b.boundjid.bare, "two anonymous logins must get different JIDs"


async def test_staff_logs_in_with_password_and_fixed_resource(clients, ejabberd):
    alice = await clients.staff("alice_acme")
    assert str(alice.boundjid) == f"alice_acme@{ejabberd.staff_host}/desk"


async def test_clients_answer_pings(clients, ejabberd):
    # frontdesk pings occupants to find out whether they are still there: our clients must
    # answer (xep_0199), as real ones do.
    v = await clients.visitor()
    alice = await clients.staff("alice_acme")
    reply = await alice.iq(str(v.boundjid), f"<ping xmlns='{NS_PING}'/>")
    assert attr(reply, "type") == "result", reply


async def test_server_rejects_a_wrong_password(ejabberd):
    from helpers import Client
    c = Client(f"alice_acme@{ejabberd.staff_host}/x", "wrong", port=ejabberd.c2s_port)
    try:
        await c.start(timeout=10)
    except AssertionError as e:
        assert "auth" in str(e)
    else:
        await c.stop()
        raise AssertionError("login with a wrong password succeeded")
    finally:
        c.abort()


async def test_component_domain_unanswered_without_frontdesk(clients, ejabberd):
    # Without frontdesk connected, ejabberd itself answers for chat.localhost with an error:
    # the frontdesk fixture's readiness check relies on telling the two apart.
    v = await clients.visitor()
    reply = await v.iq(ejabberd.component_jid, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
    assert kind(reply) == "iq" and attr(reply, "type") == "error", reply
