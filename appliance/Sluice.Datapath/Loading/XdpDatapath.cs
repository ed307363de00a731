using Sluice.Datapath.Connections;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Interop;
using Sluice.Datapath.Maps;

namespace Sluice.Datapath.Loading;

/// <summary>
/// The loaded XDP program and its maps. Loading with a pin path adopts maps already
/// pinned there (the restart path: flows, NAT and counters survive) and pins the
/// rest. Disposing closes our handles only: pinned maps and netlink attachments
/// stay, so the datapath keeps forwarding without us.
/// </summary>
public sealed unsafe partial class XdpDatapath : IDisposable
{
    private readonly BpfObjectHandle obj;
    private readonly ILogger logger;
    private readonly Sluice.Datapath.Vlans.VlanPorts vlanPorts;

    private XdpDatapath(BpfObjectHandle obj, DatapathOptions options, bool adopted, ILogger logger)
    {
        this.obj = obj;
        this.logger = logger;
        Options = options;
        AdoptedPinnedMaps = adopted;
        var program = BpfException.ThrowIfNull(Libbpf.ObjectFindProgramByName(obj.DangerousGetHandle(), MapNames.ProgramName), "find program");
        ProgramFd = BpfException.ThrowIfNegative(Libbpf.ProgramFd(program), "program fd");
        ProgramId = QueryProgramId(ProgramFd);
        Reaper = new FlowReaper(FindProgramFd(MapNames.ReaperName));
        Services = new(MapNames.Services, MapFd(MapNames.Services));
        Vips = new(MapNames.Vips, MapFd(MapNames.Vips));
        MaglevFd = MapFd(MapNames.Maglev);
        Backends = new(MapNames.Backends, MapFd(MapNames.Backends));
        Flows = new(MapNames.Flows, MapFd(MapNames.Flows));
        Nat = new SnatSlotTable(MapNames.Nat, MapFd(MapNames.Nat));
        ReplyVips = new(MapNames.ReplyVips, MapFd(MapNames.ReplyVips));
        Config = new(MapNames.Config, MapFd(MapNames.Config));
        Handshakes = new(MapNames.Handshakes, MapFd(MapNames.Handshakes));
        TxPorts = new(MapNames.TxPorts, MapFd(MapNames.TxPorts));
        Vlans = new(MapNames.Vlans, MapFd(MapNames.Vlans));
        vlanPorts = new Sluice.Datapath.Vlans.VlanPorts(Vlans);
        Counters = new(MapNames.Counters, MapFd(MapNames.Counters));
        Drops = new(MapNames.Drops, MapFd(MapNames.Drops));
        ServiceStats = new(MapNames.ServiceStats, MapFd(MapNames.ServiceStats));
        BackendStats = new(MapNames.BackendStats, MapFd(MapNames.BackendStats));
    }

    public DatapathOptions Options { get; }

    /// <summary>True when the maps were already pinned and have been reused.</summary>
    public bool AdoptedPinnedMaps { get; }

    public int ProgramFd { get; }

    public uint ProgramId { get; }

    public BpfMap<ServiceKey, ServiceEntry> Services { get; }

    public BpfMap<Be32, uint> Vips { get; }

    /// <summary>The array-of-maps: service id -> Maglev table fd (write) / map id (read).</summary>
    public int MaglevFd { get; }

    public BpfMap<uint, BackendEntry> Backends { get; }

    public BpfMap<Tuple5, FlowEntry> Flows { get; }

    /// <summary>The fullnat reverse halves: slots mapped into this process.</summary>
    public SnatSlotTable Nat { get; }

    /// <summary>The sweeper's reaper program (marks expired forward halves DEAD).</summary>
    public FlowReaper Reaper { get; }

    /// <summary>Backend endpoint -> the VIPs of the dnat services it serves (how dnat replies find their connection).</summary>
    public BpfMap<Endpoint, ReplyVips> ReplyVips { get; }

    public BpfMap<uint, ConfigEntry> Config { get; }

    /// <summary>The handshake budget's two counters (enum sluice_handshake_counter).</summary>
    public BpfMap<uint, long> Handshakes { get; }

    public BpfMap<uint, uint> TxPorts { get; }

    /// <summary>VLAN sub-interfaces of attached interfaces, both ways (see <see cref="Sluice.Datapath.Vlans.VlanPorts"/>).</summary>
    public BpfMap<VlanPort, VlanPort> Vlans { get; }

    public PerCpuArray<ulong> Counters { get; }

    public PerCpuArray<ulong> Drops { get; }

    public PerCpuArray<TrafficCounters> ServiceStats { get; }

    public PerCpuArray<TrafficCounters> BackendStats { get; }

    public static XdpDatapath Load(DatapathOptions options, ILogger logger)
    {
        if (RuntimeInformation.OSArchitecture != Architecture.X64)
        {
            // Connection slots are claimed and read with plain loads between locked instructions:
            // sound on x86-64, not on weaker memory models (docs/connection-state.md).
            throw new DatapathException($"the datapath runs on x86-64 hosts only; this one is {RuntimeInformation.OSArchitecture}");
        }
        var errors = options.Validate().ToList();
        if (errors.Count > 0)
        {
            throw new DatapathException("invalid datapath options: " + string.Join("; ", errors));
        }
        if (!File.Exists(options.ObjectPath))
        {
            throw new DatapathException($"XDP object {options.ObjectPath} not found; build the solution (dotnet build) first");
        }
        var adopted = false;
        if (options.PinPath is not null)
        {
            BpfFilesystem.EnsurePinDirectory(options.PinPath);
            adopted = MapNames.Pinned.Any(name => File.Exists(Path.Combine(options.PinPath, name)));
        }

        var raw = Libbpf.ObjectOpenFile(options.ObjectPath, 0);
        if (raw == 0)
        {
            throw new BpfException($"open {options.ObjectPath}", Marshal.GetLastPInvokeError());
        }
        var obj = new BpfObjectHandle(raw);
        try
        {
            Configure(obj.DangerousGetHandle(), options);
            var rc = Libbpf.ObjectLoad(obj.DangerousGetHandle());
            if (rc < 0)
            {
                var hint = adopted
                    ? $" The maps pinned in {options.PinPath} may be of another size or ABI version: remove the datapath (sluicectl datapath remove) or size it as before."
                    : " See the libbpf log above for the verifier's message.";
                throw new DatapathException($"loading the XDP program failed: {Marshal.GetPInvokeErrorMessage(-rc)}.{hint}", new BpfException("bpf_object__load", -rc));
            }
            var datapath = new XdpDatapath(obj, options, adopted, logger);
            if (options.PinPath is not null)
            {
                datapath.PinReaper(options.PinPath);
            }
            Log.Loaded(logger, datapath.ProgramId, options.PinPath ?? "(unpinned)", adopted);
            return datapath;
        }
        catch
        {
            obj.Dispose();
            throw;
        }
    }

    private static void Configure(nint obj, DatapathOptions options)
    {
        var sizes = new Dictionary<string, uint>
        {
            [MapNames.Services] = options.MaxServices,
            [MapNames.Vips] = options.MaxServices,
            [MapNames.Maglev] = options.MaxServices,
            [MapNames.ServiceStats] = options.MaxServices,
            [MapNames.Backends] = options.MaxBackends,
            [MapNames.BackendStats] = options.MaxBackends,
            [MapNames.NextHops] = options.MaxBackends,
            [MapNames.ReplyVips] = options.MaxBackends,
            [MapNames.Flows] = options.FlowTableSize,
            [MapNames.Nat] = SnatSlotTable.SlotsFor(options.NatTableSize ?? options.FlowTableSize),
        };
        var rodataWritten = false;
        for (var map = Libbpf.ObjectNextMap(obj, 0); map != 0; map = Libbpf.ObjectNextMap(obj, map))
        {
            var name = Marshal.PtrToStringUTF8(Libbpf.MapName(map)) ?? string.Empty;
            if (sizes.TryGetValue(name, out var size))
            {
                BpfException.ThrowIfNegative(Libbpf.MapSetMaxEntries(map, size), $"size {name}");
                if (options.PinPath is not null)
                {
                    CheckPinnedSize(Path.Combine(options.PinPath, name), size);
                }
            }
            if (name.EndsWith(".rodata", StringComparison.Ordinal))
            {
                WriteLoadConfig(map, options);
                rodataWritten = true;
            }
            else if (options.PinPath is not null && MapNames.Pinned.Contains(name))
            {
                BpfException.ThrowIfNegative(Libbpf.MapSetPinPath(map, Path.Combine(options.PinPath, name)), $"pin path of {name}");
            }
        }
        if (!rodataWritten)
        {
            throw new DatapathException("the XDP object has no .rodata section for its load-time configuration");
        }
    }

    /// <summary>A pinned map of another size cannot be adopted: say which and how, before libbpf fails vaguely.</summary>
    private static void CheckPinnedSize(string pinnedPath, uint wanted)
    {
        if (!File.Exists(pinnedPath))
        {
            return;
        }
        using var pinned = new FileDescriptorHandle(BpfException.ThrowIfNegative(Libbpf.ObjGet(pinnedPath), $"open pinned map {pinnedPath}"));
        var pinnedEntries = MapInfo.MaxEntries(pinned.Fd, pinnedPath);
        if (pinnedEntries != wanted)
        {
            throw new DatapathException(
                $"pinned map {pinnedPath} holds {pinnedEntries} entries but the configuration asks for {wanted}; " +
                "keep the old size, or remove the datapath (sluicectl datapath remove) to start afresh, losing its flows");
        }
    }

    private static void WriteLoadConfig(nint rodata, DatapathOptions options)
    {
        var data = BpfException.ThrowIfNull(Libbpf.MapInitialValue(rodata, out var size), "read .rodata");
        if ((int)size != sizeof(LoadConfig))
        {
            throw new DatapathException($".rodata is {size} bytes, expected exactly struct sluice_load_config ({sizeof(LoadConfig)}): the object and this library disagree");
        }
        var config = new LoadConfig
        {
            FlowHashSeed = options.FlowHashSeed,
            SnatPortMin = options.SnatPortMin,
            SnatPortMax = options.SnatPortMax,
            SnatProbes = options.SnatProbes,
            HandshakeLimit = options.EffectiveHandshakeLimit,
            SnatSlotMask = SnatSlotTable.SlotsFor(options.NatTableSize ?? options.FlowTableSize) - 1,
        };
        var strides = Connections.SnatStrides.For(options.SnatPortMax - options.SnatPortMin + 1);
        for (var i = 0; i < LoadConfig.SnatStrideCount; i++)
        {
            config.SnatStrides[i] = strides[i];
        }
        *(LoadConfig*)data = config;
    }

    /// <summary>Pins this object's reaper (replacing an earlier one): a tool sweeping from the pins runs it.</summary>
    private void PinReaper(string pinPath)
    {
        var path = Path.Combine(pinPath, MapNames.ReaperPin);
        File.Delete(path);
        BpfException.ThrowIfNegative(Libbpf.ObjPin(FindProgramFd(MapNames.ReaperName), path), $"pin {path}");
    }

    /// <summary>Another program of the same object (the benchmark object carries several).</summary>
    public int FindProgramFd(string name)
    {
        var program = BpfException.ThrowIfNull(Libbpf.ObjectFindProgramByName(obj.DangerousGetHandle(), name), $"find program {name}");
        return BpfException.ThrowIfNegative(Libbpf.ProgramFd(program), $"fd of program {name}");
    }

    /// <summary>The fd of any map of the object, by its ELF name.</summary>
    public int FindMapFd(string name) => MapFd(name);

    private int MapFd(string name)
    {
        for (var map = Libbpf.ObjectNextMap(obj.DangerousGetHandle(), 0); map != 0; map = Libbpf.ObjectNextMap(obj.DangerousGetHandle(), map))
        {
            if (Marshal.PtrToStringUTF8(Libbpf.MapName(map)) == name)
            {
                return BpfException.ThrowIfNegative(Libbpf.MapFd(map), $"fd of {name}");
            }
        }
        throw new DatapathException($"the XDP object has no map named {name}");
    }

    internal static uint QueryProgramId(int programFd)
    {
        var info = stackalloc byte[256];
        new Span<byte>(info, 256).Clear();
        uint length = 256;
        BpfException.ThrowIfNegative(Libbpf.ObjGetInfoByFd(programFd, info, &length), "program info");
        return ((Libbpf.ProgramInfoHead*)info)->Id;
    }

    /// <summary>
    /// Unpins maps an earlier ABI version left in the pin directory; call once this version's
    /// program is attached (nothing reads them any more). Returns the names removed.
    /// </summary>
    public static IReadOnlyList<string> RemoveEarlierVersionPins(string pinPath)
    {
        var removed = new List<string>();
        foreach (var name in MapNames.EarlierVersions())
        {
            var path = Path.Combine(pinPath, name);
            if (File.Exists(path))
            {
                File.Delete(path);
                removed.Add(name);
            }
        }
        return removed;
    }

    /// <summary>Removes the pinned maps: the explicit end of the datapath's state.</summary>
    public static void Unpin(string pinPath)
    {
        foreach (var name in MapNames.Pinned.Concat(MapNames.EarlierVersions()).Append(MapNames.ReaperPin))
        {
            File.Delete(Path.Combine(pinPath, name));
        }
        if (Directory.Exists(pinPath) && !Directory.EnumerateFileSystemEntries(pinPath).Any())
        {
            Directory.Delete(pinPath);
        }
    }

    public void Dispose()
    {
        Nat.Dispose();
        obj.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "XDP program {ProgramId} loaded, maps at {PinPath} (adopted existing: {Adopted})")]
        public static partial void Loaded(ILogger logger, uint programId, string pinPath, bool adopted);

        [LoggerMessage(2, LogLevel.Information, "XDP program {ProgramId} attached to {Interface} ({Mode}), replacing {PreviousId}")]
        public static partial void Attached(ILogger logger, uint programId, string @interface, AttachMode mode, uint previousId);

        [LoggerMessage(3, LogLevel.Warning, "native XDP is not supported on {Interface}; attached in GENERIC mode, which is several times slower")]
        public static partial void FellBackToGeneric(ILogger logger, string @interface);

        [LoggerMessage(4, LogLevel.Information, "XDP program detached from {Interface}")]
        public static partial void Detached(ILogger logger, string @interface);
    }
}
