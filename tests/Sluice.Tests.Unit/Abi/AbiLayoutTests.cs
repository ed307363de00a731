using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Sluice.Datapath.Abi;
using Sluice.Testing;

namespace Sluice.Tests.Unit.Abi;

/// <summary>
/// The C# mirrors of bpf/include/sluice_abi.h, checked by the compiler that builds the
/// program: every offset, size and enum value of the C# side becomes a _Static_assert
/// that clang evaluates against the header.
/// </summary>
public sealed partial class AbiLayoutTests
{
    /// <summary>C# type, C struct, C field names in the C# declaration order.</summary>
    private static readonly (Type Type, string Struct, string[] Fields)[] Structs =
    [
        (typeof(ServiceKey), "sluice_service_key", ["vip", "port", "protocol", "pad"]),
        (typeof(ServiceEntry), "sluice_service", ["id", "mode", "flags", "pad"]),
        (typeof(BackendEntry), "sluice_backend", ["address", "port", "flags", "pad", "service_id", "pad2", "egress"]),
        (typeof(Tuple5), "sluice_tuple", ["saddr", "daddr", "sport", "dport", "protocol", "pad[0]", "pad[1]", "pad[2]"]),
        (typeof(FlowEntry), "sluice_flow", ["backend_address", "backend_port", "mode", "pad", "backend_id", "service_id", "snat_address", "snat_port", "pad2", "flags", "generation", "backend_isn", "created_ns", "last_seen_ns", "closed_ns", "reply_seen_ns"]),
        (typeof(ReapRequest), "sluice_reap_request", ["key", "created_ns", "last_seen_ns", "reply_seen_ns", "word", "pad"]),
        (typeof(Endpoint), "sluice_endpoint", ["address", "port", "protocol", "pad"]),
        (typeof(ReplyVips), "sluice_reply_vips", ["count", "pad", "vips"]),
        (typeof(NextHop), "sluice_next_hop", ["resolved_ns", "egress", "input_ifindex", "dmac", "smac", "max_len", "pad", "pad2"]),
        (typeof(VlanPort), "sluice_vlan", ["ifindex", "vlan_id", "pad"]),
        (typeof(SnatSlot), "sluice_snat_slot", ["owner", "key", "saddr", "daddr", "sport", "dport", "flags", "service_id", "backend_id", "backend_isn", "pad", "last_seen_ns"]),
        (typeof(ConfigEntry), "sluice_config", ["snat_address_count", "snat_addresses"]),
        (typeof(LoadConfig), "sluice_load_config", ["flow_hash_seed", "snat_port_min", "snat_port_max", "snat_probes", "handshake_limit", "snat_slot_mask", "pad", "snat_strides"]),
        (typeof(TrafficCounters), "sluice_traffic_counters", ["packets", "bytes", "new_flows", "reply_packets", "reply_bytes"]),
    ];

    [Fact]
    public void EveryMirrorMatchesTheHeaderAsClangLaysItOut()
    {
        var source = new StringBuilder("#include <stddef.h>\n#include \"sluice_abi.h\"\n");
        foreach (var (type, cStruct, cFields) in Structs)
        {
            var fields = type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
            Xunit.Assert.True(fields.Length == cFields.Length, $"{type.Name} has {fields.Length} fields, struct {cStruct} is listed with {cFields.Length}");
            AddAssertion(source, $"sizeof(struct {cStruct}) == {Marshal.SizeOf(type)}", $"size of {cStruct}");
            for (var i = 0; i < fields.Length; i++)
            {
                var offset = Marshal.OffsetOf(type, fields[i].Name);
                var size = Marshal.SizeOf(fields[i].FieldType.IsEnum ? Enum.GetUnderlyingType(fields[i].FieldType) : fields[i].FieldType);
                var member = cFields[i];
                AddAssertion(source, $"offsetof(struct {cStruct}, {member}) == {offset}", $"offset of {cStruct}.{member}");
                AddAssertion(source, $"sizeof(((struct {cStruct} *)0)->{member}) == {size}", $"size of {cStruct}.{member}");
            }
        }
        foreach (var value in Enum.GetValues<DatapathCounter>())
        {
            AddAssertion(source, $"SLUICE_CTR_{UpperSnake(value.ToString())} == {(int)value}", $"counter {value}");
        }
        foreach (var value in Enum.GetValues<DropReason>())
        {
            AddAssertion(source, $"SLUICE_DROP_{UpperSnake(value.ToString())} == {(int)value}", $"drop reason {value}");
        }
        AddAssertion(source, $"SLUICE_CTR_MAX == {Enum.GetValues<DatapathCounter>().Length}", "every counter is mirrored");
        AddAssertion(source, $"SLUICE_DROP_MAX == {Enum.GetValues<DropReason>().Length}", "every drop reason is mirrored");
        AddAssertion(source, $"SLUICE_ABI_VERSION == {Sluice.Datapath.Loading.MapNames.AbiVersion}", "ABI version (map name suffix)");
        foreach (var flag in Enum.GetValues<ConnectionFlags>().Where(f => f != ConnectionFlags.None))
        {
            AddAssertion(source, $"SLUICE_CONN_F_{UpperSnake(flag.ToString())} == {(uint)flag}", $"connection flag {flag}");
        }
        foreach (var result in Enum.GetValues<ReapResult>())
        {
            AddAssertion(source, $"SLUICE_REAP_{UpperSnake(result.ToString())} == {(int)result}", $"reap result {result}");
        }
        AddAssertion(source, "SLUICE_FLOW_FLAGS_MASK == 0xffff && SLUICE_FLOW_GENERATION_SHIFT == 16", "a forward half's word (FlowEntry.Word)");
        AddAssertion(source, $"SLUICE_HANDSHAKES_DATAPATH == {(int)HandshakeCounter.Datapath}", "handshake counter");
        AddAssertion(source, $"SLUICE_HANDSHAKES_SWEPT == {(int)HandshakeCounter.Swept}", "handshake counter");
        AddAssertion(source, $"SLUICE_HANDSHAKES_MAX == {Enum.GetValues<HandshakeCounter>().Length}", "every handshake counter is mirrored");
        AddAssertion(source, $"SLUICE_SNAT_STRIDES == {LoadConfig.SnatStrideCount}", "SNAT strides");
        AddAssertion(source, $"SLUICE_FLOW_TOUCH_NS == {Sluice.Datapath.Connections.ConnectionTimeouts.TouchIntervalNs}ULL", "last-seen refresh interval");
        AddAssertion(source, $"SLUICE_NEXT_HOP_TTL_NS == {NextHop.TtlNs}ULL", "next-hop cache lifetime");
        AddAssertion(source, $"SLUICE_COUNTER_SLOTS == {CounterSlots.Counters}", "counter slots");
        AddAssertion(source, $"SLUICE_DROP_SLOTS == {CounterSlots.Drops}", "drop slots");
        AddAssertion(source, $"SLUICE_MAX_SNAT_ADDRESSES == {ConfigEntry.MaxSnatAddresses}", "SNAT addresses");
        AddAssertion(source, $"SLUICE_MAX_SNAT_PROBES == {LoadConfig.MaxSnatProbes}", "SNAT probes");
        AddAssertion(source, $"SLUICE_MAX_REPLY_VIPS == {ReplyVips.Max}", "dnat services per backend");
        AddAssertion(source, $"SLUICE_SLOT_WRITING == {SnatSlot.Writing}ULL", "slot being claimed");
        AddAssertion(source, $"SLUICE_SLOT_RETIRED == {SnatSlot.Retired}ULL", "slot being freed");
        AddAssertion(source, $"SLUICE_SNAT_SLOT_SEED == {SnatSlot.IndexSeed}U", "slot index seed");
        AddAssertion(source, $"SLUICE_MODE_FULLNAT == {(int)ServiceMode.FullNat}", "fullnat");
        AddAssertion(source, $"SLUICE_MODE_DNAT == {(int)ServiceMode.Dnat}", "dnat");
        AddAssertion(source, $"SLUICE_SERVICE_F_SOURCE_AFFINITY == {(int)ServiceFlags.SourceAffinity}", "affinity flag");
        AddAssertion(source, $"SLUICE_BACKEND_F_PRESENT == {(int)BackendFlags.Present}", "present flag");

        var file = Path.Combine(Path.GetTempPath(), $"sluice-abi-{Guid.NewGuid():N}.c");
        try
        {
            File.WriteAllText(file, source.ToString());
            var include = Path.Combine(RepositoryRoot(), "bpf", "include");
            var arch = Directory.Exists("/usr/include/x86_64-linux-gnu") ? "/usr/include/x86_64-linux-gnu" : "/usr/include/aarch64-linux-gnu";
            var (exit, output) = Command.TryRun("clang", "-target", "bpf", "-fsyntax-only", $"-I{include}", $"-I{arch}", file);
            Xunit.Assert.True(exit == 0, $"the C# mirrors disagree with sluice_abi.h:\n{output}");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void TheCheckCatchesAWrongMirror()
    {
        // The generated check must be able to fail: a deliberately wrong assertion does.
        var file = Path.Combine(Path.GetTempPath(), $"sluice-abi-{Guid.NewGuid():N}.c");
        try
        {
            File.WriteAllText(file, "#include \"sluice_abi.h\"\n_Static_assert(sizeof(struct sluice_flow) == 20, \"wrong on purpose\");\n");
            var arch = Directory.Exists("/usr/include/x86_64-linux-gnu") ? "/usr/include/x86_64-linux-gnu" : "/usr/include/aarch64-linux-gnu";
            var (exit, output) = Command.TryRun("clang", "-target", "bpf", "-fsyntax-only", $"-I{Path.Combine(RepositoryRoot(), "bpf", "include")}", $"-I{arch}", file);
            Xunit.Assert.NotEqual(0, exit);
            Xunit.Assert.Contains("wrong on purpose", output);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static void AddAssertion(StringBuilder source, string condition, string what) =>
        source.Append("_Static_assert(").Append(condition).Append(", \"").Append(what).Append("\");\n");

    /// <summary>PassNoNeighbour -> PASS_NO_NEIGHBOUR, L4Truncated -> L4_TRUNCATED.</summary>
    private static string UpperSnake(string name) => WordBoundary().Replace(name, "_").ToUpperInvariant();

    [GeneratedRegex("(?<=[a-z0-9])(?=[A-Z])")]
    private static partial Regex WordBoundary();

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Appliance.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException("cannot find the repository root (Appliance.sln) above the test binaries");
    }
}
