using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Connections;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Programming;
using Sluice.Datapath.Testing;
using Sluice.Testing;
using Sluice.Testing.Packets;

namespace Sluice.Tests.Datapath;

/// <summary>The restart path: pinned maps adopted, the program replaced atomically, state kept.</summary>
public sealed class PinningTests
{
    private static readonly ServiceSpec Web = new(IPAddress.Parse("198.18.100.1"), 80, L4Protocol.Tcp,
        [new BackendSpec(IPAddress.Parse("198.18.2.10"), 8080), new BackendSpec(IPAddress.Parse("198.18.2.11"), 8080)]);

    private static DatapathOptions PinnedOptions(string pinPath) => new()
    {
        PinPath = pinPath, MaxServices = 64, MaxBackends = 256, FlowTableSize = 4096, FlowHashSeed = 7,
    };

    private static string NewPinPath() => $"/sys/fs/bpf/sluice-test-{Guid.NewGuid():N}";

    [RootFact]
    public void ARestartedLoaderAdoptsPinnedStateAndReplacesTheProgramAtomically()
    {
        using var env = new DatapathEnvironment();
        var pinPath = NewPinPath();
        try
        {
            var syn = new PacketSpec
            {
                SourceMac = DatapathEnvironment.ClientMac, DestinationMac = DatapathEnvironment.Cl0Mac,
                Source = IPAddress.Parse("198.19.1.10"), Destination = Web.Vip, SourcePort = 41000, DestinationPort = 80,
            };
            var (firstId, firstOutput, firstIds) = env.Thread.Run(() =>
            {
                using var first = XdpDatapath.Load(PinnedOptions(pinPath), NullLogger.Instance);
                Assert.False(first.AdoptedPinnedMaps);
                var programmer = new DatapathProgrammer(first);
                programmer.SetSnatAddresses([DatapathEnvironment.SnatAddress]);
                var programmed = programmer.Apply(Web);
                first.RegisterTxPort("be0");
                first.AttachAll(["cl0"]);
                var output = ProgramTestRun.Run(first.ProgramFd, PacketBuilder.Build(syn), XdpDatapath.InterfaceIndex("cl0")).Output;
                return (first.ProgramId, output, programmed.BackendIds);
            }); // the first loader is gone: only pins and the netlink attachment remain

            env.Thread.Run(() =>
            {
                Assert.Equal(firstId, XdpDatapath.AttachedProgramId("cl0"));
                using var second = XdpDatapath.Load(PinnedOptions(pinPath), NullLogger.Instance);
                Assert.True(second.AdoptedPinnedMaps);

                // The control plane's ids come back from the maps.
                var programmer = new DatapathProgrammer(second);
                Assert.Equal(firstIds.OrderBy(p => p.Key), programmer.Services[Web.Key].BackendIds.OrderBy(p => p.Key));
                Assert.Single(second.Flows.Entries());

                // Attaching replaces the running program in one step: no detach in between.
                second.RegisterTxPort("be0");
                second.AttachAll(["cl0"]);
                Assert.Equal(second.ProgramId, XdpDatapath.AttachedProgramId("cl0"));
                Assert.NotEqual(firstId, second.ProgramId);

                // The flow made by the first program is followed by the second: same rewrite.
                var hitsBefore = second.Counters.Read((uint)DatapathCounter.FlowHit).Aggregate(0UL, (a, b) => a + b);
                var again = ProgramTestRun.Run(second.ProgramFd, PacketBuilder.Build(syn), XdpDatapath.InterfaceIndex("cl0"));
                Assert.Equal(Convert.ToHexString(firstOutput), Convert.ToHexString(again.Output));
                Assert.Equal(hitsBefore + 1, second.Counters.Read((uint)DatapathCounter.FlowHit).Aggregate(0UL, (a, b) => a + b));

                // Re-applying the same service keeps every id: no flow is disturbed.
                var reapplied = programmer.Apply(Web);
                Assert.Equal(firstIds.OrderBy(p => p.Key), reapplied.BackendIds.OrderBy(p => p.Key));

                XdpDatapath.Detach("cl0");
                Assert.Equal(0u, XdpDatapath.AttachedProgramId("cl0"));
            });
            XdpDatapath.Unpin(pinPath);
            Assert.False(Directory.Exists(pinPath));
        }
        finally
        {
            if (Directory.Exists(pinPath))
            {
                XdpDatapath.Unpin(pinPath);
            }
        }
    }

    [RootFact]
    public void PinnedMapsOfAnotherSizeAreRefusedWithAClearErrorAndLeftIntact()
    {
        var pinPath = NewPinPath();
        try
        {
            using (XdpDatapath.Load(PinnedOptions(pinPath), NullLogger.Instance))
            {
            }
            var error = Assert.Throws<DatapathException>(() =>
                XdpDatapath.Load(PinnedOptions(pinPath) with { FlowTableSize = 8192 }, NullLogger.Instance));
            Assert.Contains("datapath remove", error.Message);
            Assert.True(File.Exists(Path.Combine(pinPath, MapNames.Flows)));
            using var again = XdpDatapath.Load(PinnedOptions(pinPath), NullLogger.Instance);
            Assert.True(again.AdoptedPinnedMaps);
        }
        finally
        {
            XdpDatapath.Unpin(pinPath);
        }
    }

    [RootFact]
    public void OnePinnedDatapathHasOneSweeperAtATime()
    {
        // Two sweepers would delete each other's freshly marked connections before the grace
        // period: the second (a second daemon, or the tool beside one) is refused, saying why.
        var pinPath = NewPinPath();
        try
        {
            using var datapath = XdpDatapath.Load(PinnedOptions(pinPath), NullLogger.Instance);
            var first = new ConnectionSweeper(datapath, new ConnectionTimeouts());
            using var pinned = PinnedMaps.Open(pinPath);
            var error = Assert.Throws<DatapathException>(() => new ConnectionSweeper(ConnectionMaps.Of(pinned), new ConnectionTimeouts()));
            Assert.Contains("another sweeper", error.Message);
            Assert.Contains(pinPath, error.Message);
            first.Dispose();
            using var second = new ConnectionSweeper(ConnectionMaps.Of(pinned), new ConnectionTimeouts());
            Assert.Equal(0, second.Sweep(ConnectionTable.NowNs()).TotalExpired);
        }
        finally
        {
            XdpDatapath.Unpin(pinPath);
        }
    }

    [RootFact]
    public void APinPathOutsideBpffsIsRefusedWithTheMountCommand()
    {
        var error = Assert.Throws<DatapathException>(() =>
            XdpDatapath.Load(PinnedOptions($"/tmp/sluice-not-bpffs-{Guid.NewGuid():N}"), NullLogger.Instance));
        Assert.Contains("mount -t bpf", error.Message);
    }

    [RootFact]
    public void InvalidOptionsAreRefusedBeforeAnythingIsLoaded()
    {
        var error = Assert.Throws<DatapathException>(() => XdpDatapath.Load(
            new DatapathOptions { SnatPortMin = 5000, SnatPortMax = 4000, SnatProbes = 99 }, NullLogger.Instance));
        Assert.Contains("snatPorts", error.Message);
        Assert.Contains("snatProbes", error.Message);
    }

    [RootFact]
    public void GenericModeIsUsedWhenAskedForAndShowsAsSuch()
    {
        using var env = new DatapathEnvironment();
        env.Thread.Run(() =>
        {
            var modes = env.Datapath.AttachAll(["ot0"], AttachMode.Generic);
            Assert.Equal(AttachMode.Generic, modes["ot0"]);
            Assert.Equal(env.Datapath.ProgramId, XdpDatapath.AttachedProgramId("ot0"));
        });
        Assert.Contains("xdpgeneric", Command.InNamespace(env.NamespaceName, "ip", "-d", "link", "show", "ot0"));
        env.Thread.Run(() => XdpDatapath.Detach("ot0"));
        Assert.DoesNotContain("xdp", Command.InNamespace(env.NamespaceName, "ip", "link", "show", "ot0"));
    }

    [RootFact]
    public void AttachingToAMissingInterfaceNamesIt()
    {
        using var datapath = XdpDatapath.Load(new DatapathOptions { MaxServices = 8, MaxBackends = 8, FlowTableSize = 64 }, NullLogger.Instance);
        var error = Assert.Throws<DatapathException>(() => datapath.Attach("sl-no-such-if"));
        Assert.Contains("sl-no-such-if", error.Message);
    }
}
