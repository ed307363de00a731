using System.Net;
using Sluice.Daemon.Hosting;
using Sluice.Daemon.Reconciling;
using Sluice.Datapath.Connections;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Programming;
using Sluice.Model.Configuration;
using Sluice.Model.Services;
using Sluice.Model.State;

namespace Sluice.Daemon.Datapath;

/// <summary>
/// Brings the datapath up before the host reports ready: load (adopting pinned maps),
/// program the desired state, then attach (replacing a running program atomically).
/// Stopping closes our handles only; the datapath keeps forwarding without us.
/// </summary>
public sealed partial class DatapathHost(ConfigSource config, Reconciler reconciler, ApiStateStore store, Events.EventLog events, ILogger<DatapathHost> logger) : IHostedService
{
    private XdpDatapath? datapath;

    public XdpDatapath Datapath => datapath ?? throw new InvalidOperationException("the datapath is not loaded");

    public IReadOnlyDictionary<string, AttachMode> Attached { get; private set; } = new Dictionary<string, AttachMode>();

    public bool IsStarted => datapath is not null;

    /// <summary>The 802.1Q sub-interfaces of the attached interfaces the datapath balances for.</summary>
    public IReadOnlyList<Sluice.Datapath.Vlans.VlanSubInterface> Vlans { get; private set; } = [];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = config.Current.Datapath;
        Sluice.Datapath.Interop.LibbpfLog.RouteTo(logger);
        datapath = XdpDatapath.Load(OptionsFrom(settings), logger);
        var programmer = new DatapathProgrammer(datapath);
        programmer.SetSnatAddresses(settings.SnatAddresses.Select(IPAddress.Parse).ToList());

        var (initial, conflicts) = DesiredState.Empty.ReplaceOwner(Owner.Config, config.Current.Services);
        var apiServices = store.Load();
        (initial, var apiConflicts) = initial.ReplaceOwner(Owner.Api, apiServices);
        if (apiConflicts.Count > 0)
        {
            throw new InvalidOperationException("the config file and the API state disagree: " + string.Join("; ", apiConflicts.Select(c => c.Message)));
        }
        reconciler.Start(programmer, initial);
        var mode = settings.AttachMode == "generic" ? AttachMode.Generic : AttachMode.Native;
        Attached = datapath.AttachAll(settings.Interfaces!, mode);
        SyncVlans();
        var stale = XdpDatapath.RemoveEarlierVersionPins(settings.PinPath);
        if (stale.Count > 0)
        {
            events.Add("datapath", $"removed {stale.Count} map(s) pinned by an earlier datapath version ({string.Join(", ", stale)}); their connections are not carried over");
        }
        Log.Started(logger, datapath.ProgramId, string.Join(",", settings.Interfaces!), initial.Services.Count, datapath.AdoptedPinnedMaps);
        events.Add("datapath", $"program {datapath.ProgramId} attached to {string.Join(",", Attached.Select(a => $"{a.Key} ({a.Value.ToString().ToLowerInvariant()})"))}; "
            + (datapath.AdoptedPinnedMaps ? "adopted the pinned maps (flows kept)" : "new maps") + $"; {initial.Services.Count} service(s)");
        return Task.CompletedTask;
    }

    public static DatapathOptions OptionsFrom(DatapathSection settings) => new()
    {
        PinPath = settings.PinPath,
        FlowTableSize = (uint)settings.FlowTableSize,
        MaxServices = (uint)settings.MaxServices,
        MaxBackends = (uint)settings.MaxBackends,
        FlowHashSeed = (uint)settings.FlowHashSeed,
        SnatPortMin = (ushort)settings.SnatPortMin,
        SnatPortMax = (ushort)settings.SnatPortMax,
        HandshakeLimit = (uint?)settings.Connections.HandshakeLimit,
    };

    public static ConnectionTimeouts TimeoutsFrom(ConnectionsSection settings) => new()
    {
        TcpHandshake = TimeSpan.FromSeconds(settings.TcpHandshakeSeconds),
        TcpEstablished = TimeSpan.FromSeconds(settings.TcpEstablishedSeconds),
        TcpHalfClosed = TimeSpan.FromSeconds(settings.TcpHalfClosedSeconds),
        TcpClosed = TimeSpan.FromSeconds(settings.TcpClosedSeconds),
        Udp = TimeSpan.FromSeconds(settings.UdpSeconds),
    };

    /// <summary>Healthy: our program is attached on every interface and the maps answer.</summary>
    public (bool Healthy, string Detail) Health()
    {
        if (datapath is null)
        {
            return (false, "datapath not loaded");
        }
        try
        {
            foreach (var name in Attached.Keys)
            {
                var attached = XdpDatapath.AttachedProgramId(name);
                if (attached != datapath.ProgramId)
                {
                    return (false, attached == 0 ? $"no XDP program on {name}" : $"program {attached} on {name} is not ours ({datapath.ProgramId})");
                }
            }
            datapath.Config.TryLookup(0, out _);
            return (true, "ok");
        }
        catch (Exception ex)
        {
            return (false, ex.Message);
        }
    }

    /// <summary>Lists the attached interfaces' VLAN sub-interfaces for the datapath again (the
    /// watchdog calls it: a sub-interface added or removed counts within one interval); an event
    /// when they change. Frames of a VLAN not listed pass to the kernel untouched.</summary>
    public void SyncVlans()
    {
        if (datapath is null)
        {
            return;
        }
        var now = datapath.SyncVlans();
        if (!now.SequenceEqual(Vlans))
        {
            var listed = now.Count == 0 ? "none" : string.Join(", ", now.Select(v => $"{v.Name} (VLAN {v.VlanId} on {v.ParentName})"));
            Log.VlansChanged(logger, listed);
            events.Add("datapath", $"VLAN sub-interfaces balanced for: {listed}");
            Vlans = now;
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        // Deliberately no detach and no unpin: removing the datapath is an explicit act.
        datapath?.Dispose();
        datapath = null;
        Log.Stopped(logger);
        return Task.CompletedTask;
    }

    private static partial class Log
    {
        [LoggerMessage(300, LogLevel.Information, "datapath up: program {ProgramId} on {Interfaces}, {Services} service(s), adopted pinned maps: {Adopted}")]
        public static partial void Started(ILogger logger, uint programId, string interfaces, int services, bool adopted);

        [LoggerMessage(302, LogLevel.Information, "VLAN sub-interfaces balanced for: {Vlans}")]
        public static partial void VlansChanged(ILogger logger, string vlans);

        [LoggerMessage(301, LogLevel.Information, "control plane stopped; the datapath keeps forwarding (remove it with: sluicectl datapath remove)")]
        public static partial void Stopped(ILogger logger);
    }
}
