using System.Net;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Connections;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Programming;
using Sluice.Datapath.Testing;
using Sluice.Testing;
using static Sluice.Tests.Datapath.Conversation;

namespace Sluice.Tests.Datapath;

/// <summary>
/// A forward half's element is never freed while a CPU may hold it: a preallocated hash hands a
/// deleted element to the next insert at once, and a CPU still holding it would write the old
/// connection's FIN into the new one (which the sweeper then takes for closed, freeing its SNAT
/// port under a live client). So expiry is two-phase (DEAD by the reaper program, deleted a
/// grace period later) and a connection reusing a key is put in place of the old one, its generation
/// bumped, so a write meant for the old one cannot land.
/// </summary>
public sealed class FlowReapingTests
{
    private static readonly IPAddress Vip = IPAddress.Parse("198.18.100.1");
    private static readonly IPAddress Client = IPAddress.Parse("198.19.1.10");

    private static DatapathEnvironment Environment(ServiceMode mode, L4Protocol protocol = L4Protocol.Tcp)
    {
        var env = new DatapathEnvironment(new DatapathOptions
        {
            MaxServices = 16, MaxBackends = 64, FlowTableSize = 1024, SnatPortMin = 40000, SnatPortMax = 40100, FlowHashSeed = 7,
        });
        env.Apply(new ServiceSpec(Vip, 80, protocol, [new BackendSpec(IPAddress.Parse("198.18.2.10"), 8080)]) { Mode = mode });
        return env;
    }

    private static Tuple5 KeyOf(Conversation conversation, byte protocol = 6) =>
        new(Be32.From(conversation.Client), Be32.From(Vip), Be16.FromHost(conversation.ClientPort), Be16.FromHost(80), protocol);

    private static FlowEntry? Flow(DatapathEnvironment env, Tuple5 key) =>
        env.Thread.Run(() => env.Datapath.Flows.TryLookup(key, out var flow) ? flow : (FlowEntry?)null);

    private static ulong Later => ConnectionTable.NowNs() + 10_000_000_000;

    [RootTheory]
    [InlineData(ServiceMode.FullNat)]
    [InlineData(ServiceMode.Dnat)]
    public void AnExpiredConnectionIsMarkedDeadAndDeletedOnlyAfterAGracePeriod(ServiceMode mode)
    {
        using var env = Environment(mode);
        var a = new Conversation(env, Client, 50100, Vip, 80);
        Assert.True(a.Handshake());
        Assert.Equal(XdpAction.Redirect, a.Send(Tcp.Rst).Action);
        FlowEntry? whileWaiting = null;
        var sweeper = env.Thread.Run(() => new ConnectionSweeper(env.Datapath, new ConnectionTimeouts(), () =>
        {
            // Still in the table, inert, while CPUs that found it before let go of it.
            whileWaiting = env.Datapath.Flows.TryLookup(KeyOf(a), out var flow) ? flow : null;
            return RcuGracePeriod.TryWait();
        }));

        Assert.Equal(1, env.Thread.Run(() => sweeper.Sweep(Later)).Expired[ExpiryReason.Closed]);
        Assert.True(whileWaiting?.IsDead);
        Assert.Null(Flow(env, KeyOf(a)));
        Assert.True(a.Handshake()); // the key is free again (a fullnat port only a sweep later: another is probed)
        Assert.True(a.IsForMe(a.Reply(Tcp.Ack | Tcp.Psh, "anew"u8.ToArray())));
    }

    [RootFact]
    public void WithoutAGracePeriodADeadConnectionIsDeletedAtTheNextSweep()
    {
        // A nohz_full kernel refuses membarrier(GLOBAL): the sweep interval is the grace period.
        using var env = Environment(ServiceMode.FullNat);
        var a = new Conversation(env, Client, 50104, Vip, 80);
        Assert.True(a.Handshake());
        Assert.Equal(XdpAction.Redirect, a.Send(Tcp.Rst).Action);
        var sweeper = env.Thread.Run(() => new ConnectionSweeper(env.Datapath, new ConnectionTimeouts(), () => false));

        Assert.Equal(1, env.Thread.Run(() => sweeper.Sweep(Later)).Expired[ExpiryReason.Closed]);
        Assert.True(Flow(env, KeyOf(a))?.IsDead);
        Assert.Empty(env.Thread.Run(() => ConnectionTable.Read(env.Datapath.Flows, env.Datapath.Nat)).Connections);

        Assert.Equal(0, env.Thread.Run(() => sweeper.Sweep(Later)).TotalExpired);
        Assert.Null(Flow(env, KeyOf(a)));
        Assert.True(a.Handshake());
    }

    [RootFact]
    public void WhatAnEarlierSweeperLeftGoesOnlyAfterAGracePeriodOrTwoSweeps()
    {
        // An earlier sweeper may have stopped a moment after marking and retiring: a new one
        // must not delete or free at once what a CPU (or an in-flight reply) may still hold.
        using var env = Environment(ServiceMode.FullNat);
        var a = new Conversation(env, Client, 50105, Vip, 80);
        Assert.True(a.Handshake());
        Assert.Equal(XdpAction.Redirect, a.Send(Tcp.Rst).Action);
        using (var earlier = env.Thread.Run(() => new ConnectionSweeper(env.Datapath, new ConnectionTimeouts(), () => false)))
        {
            Assert.Equal(1, env.Thread.Run(() => earlier.Sweep(Later)).Expired[ExpiryReason.Closed]);
        }
        var slotsRetired = env.Thread.Run(() => env.Datapath.Nat.Retired().Count);
        Assert.Equal(1, slotsRetired);

        var next = env.Thread.Run(() => new ConnectionSweeper(env.Datapath, new ConnectionTimeouts(), () => false));
        env.Thread.Run(() => next.Sweep(Later));
        Assert.True(Flow(env, KeyOf(a))?.IsDead);
        Assert.Equal(1, env.Thread.Run(() => env.Datapath.Nat.Retired().Count));
        env.Thread.Run(() => next.Sweep(Later));
        Assert.Null(Flow(env, KeyOf(a)));
        Assert.Empty(env.Thread.Run(() => env.Datapath.Nat.Retired()));
    }

    [RootFact]
    public void ADeadConnectionIsGoneForEveryPacketAndNeverWritten()
    {
        using var env = Environment(ServiceMode.Dnat);
        var a = new Conversation(env, Client, 50101, Vip, 80);
        Assert.True(a.Handshake());
        var sweeper = env.Thread.Run(() => new ConnectionSweeper(env.Datapath, new ConnectionTimeouts { TcpEstablished = TimeSpan.FromSeconds(5) }, () => false));
        Assert.Equal(1, env.Thread.Run(() => sweeper.Sweep(Later)).Expired[ExpiryReason.Idle]);
        var dead = Flow(env, KeyOf(a))!.Value;

        var noConnection = env.Drops(DropReason.NoConnection);
        var expiring = env.Drops(DropReason.ConnectionExpiring);
        Assert.Equal(XdpAction.Drop, a.Send(Tcp.Ack | Tcp.Fin).Action);
        Assert.Equal(noConnection + 1, env.Drops(DropReason.NoConnection));
        Assert.Equal(XdpAction.Drop, a.Send(Tcp.Syn).Action); // its key is taken until the next sweep
        Assert.Equal(expiring + 1, env.Drops(DropReason.ConnectionExpiring));
        // Nor are the backend's replies translated, nor let out with its address: dropped.
        Assert.Equal(XdpAction.Drop, a.Reply(Tcp.Ack | Tcp.Fin).Action);
        Assert.Equal(noConnection + 2, env.Drops(DropReason.NoConnection));
        Assert.Equal(dead, Flow(env, KeyOf(a))); // nothing written: not a flag, not a time
    }

    [RootFact]
    public void TheReaperMarksOnlyAConnectionStillAsTheSweeperSawIt()
    {
        using var env = Environment(ServiceMode.FullNat, L4Protocol.Udp);
        var a = new Conversation(env, Client, 50102, Vip, 80, protocol: 17);
        Assert.Equal(XdpAction.Redirect, a.Send(0).Action);
        var key = KeyOf(a, 17);
        var seen = Flow(env, key)!.Value;
        var reaper = env.Datapath.Reaper;

        // A packet since the read (its refresh, its flags, another connection in its place): kept.
        Assert.Equal(ReapResult.Changed, env.Thread.Run(() => reaper.Reap(key, seen with { LastSeenNs = seen.LastSeenNs - 1 })));
        Assert.Equal(ReapResult.Changed, env.Thread.Run(() => reaper.Reap(key, seen with { FlagBits = (ushort)ConnectionFlags.Replied })));
        Assert.Equal(ReapResult.Changed, env.Thread.Run(() => reaper.Reap(key, seen with { Generation = (ushort)(seen.Generation + 1) })));
        Assert.Equal(ReapResult.Changed, env.Thread.Run(() => reaper.Reap(key, seen with { CreatedNs = seen.CreatedNs + 1 })));
        Assert.Equal(ReapResult.Gone, env.Thread.Run(() => reaper.Reap(key with { SourcePort = Be16.FromHost(1) }, seen)));
        Assert.Equal(seen, Flow(env, key));

        Assert.Equal(ReapResult.Marked, env.Thread.Run(() => reaper.Reap(key, seen)));
        Assert.True(Flow(env, key)!.Value.IsDead);
        Assert.Equal(ReapResult.Gone, env.Thread.Run(() => reaper.Reap(key, seen)));
    }

    [RootTheory]
    [InlineData(ServiceMode.FullNat)]
    [InlineData(ServiceMode.Dnat)]
    public void AConnectionReusingAClosedOnesKeyTakesItsPlaceWithTheNextGeneration(ServiceMode mode)
    {
        using var env = Environment(mode);
        var a = new Conversation(env, Client, 50103, Vip, 80);
        Assert.True(a.Handshake());
        Assert.Equal(XdpAction.Redirect, a.Send(Tcp.Rst).Action);
        var closed = Flow(env, KeyOf(a))!.Value;
        var sweeper = env.Thread.Run(() => new ConnectionSweeper(env.Datapath, new ConnectionTimeouts()));
        var handshakes = env.Thread.Run(sweeper.HandshakesInProgress);

        Assert.True(a.Handshake());
        var reused = Flow(env, KeyOf(a))!.Value;
        Assert.Equal(closed.Generation + 1, reused.Generation);
        // Its own flags only (fullnat keeps REPLIED in the reverse half).
        Assert.Equal(mode == ServiceMode.FullNat ? ConnectionFlags.Established : ConnectionFlags.Established | ConnectionFlags.Replied, reused.Flags);
        Assert.Equal(0UL, reused.ClosedNs);
        Assert.Equal(handshakes, env.Thread.Run(sweeper.HandshakesInProgress));
        // The reaper, handed the old connection as the sweeper read it, leaves the new one alone.
        Assert.Equal(ReapResult.Changed, env.Thread.Run(() => env.Datapath.Reaper.Reap(KeyOf(a), closed)));
        Assert.True(a.IsForMe(a.Reply(Tcp.Ack | Tcp.Psh, "second connection"u8.ToArray())));
    }
}
