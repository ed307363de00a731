using Sluice.Datapath.Interop;

namespace Sluice.Datapath.Programming;

/// <summary>
/// A service's Maglev table in the kernel: an array map of M+1 u32 (slot 0 = M, then
/// backend ids), created whole and swapped into the outer array-of-maps in one update,
/// so a packet sees either the old table or the new one, never a mix.
/// </summary>
internal static unsafe class MaglevTableMap
{
    private const uint BPF_MAP_TYPE_ARRAY = 2;
    private const uint BPF_F_INNER_MAP = 1u << 12;

    /// <summary>Creates and fills a service's new table, not yet in use.</summary>
    public static FileDescriptorHandle Create(uint serviceId, ReadOnlySpan<uint> backendIds)
    {
        var entries = (uint)backendIds.Length + 1;
        var options = new Libbpf.MapCreateOptions { Size = (nuint)sizeof(Libbpf.MapCreateOptions), MapFlags = BPF_F_INNER_MAP };
        var table = new FileDescriptorHandle(BpfException.ThrowIfNegative(
            Libbpf.MapCreate(BPF_MAP_TYPE_ARRAY, "sluice_maglev", sizeof(uint), sizeof(uint), entries, &options),
            $"create Maglev table ({entries} slots) for service {serviceId}"));

        var keys = new uint[entries];
        var values = new uint[entries];
        values[0] = (uint)backendIds.Length;
        for (uint i = 0; i < entries; i++)
        {
            keys[i] = i;
        }
        backendIds.CopyTo(values.AsSpan(1));
        try
        {
            fixed (uint* k = keys, v = values)
            {
                var count = entries;
                BpfException.ThrowIfNegative(Libbpf.MapUpdateBatch(table.Fd, k, v, &count, 0), $"fill Maglev table of service {serviceId}");
            }
        }
        catch
        {
            table.Dispose();
            throw;
        }
        return table;
    }

    /// <summary>
    /// Swaps new tables in, each whole. One batch update: the kernel waits for running
    /// programs (an RCU grace period, about a millisecond) once per update call of a
    /// map-in-map, so programming 10,000 services one by one would wait 10,000 times.
    /// </summary>
    public static void SwapIn(int outerFd, IReadOnlyList<(uint ServiceId, FileDescriptorHandle Table)> tables)
    {
        if (tables.Count == 0)
        {
            return;
        }
        var keys = tables.Select(t => t.ServiceId).ToArray();
        var values = tables.Select(t => (uint)t.Table.Fd).ToArray();
        fixed (uint* k = keys, v = values)
        {
            var count = (uint)keys.Length;
            if (keys.Length > 1 && Libbpf.MapUpdateBatch(outerFd, k, v, &count, 0) >= 0)
            {
                return;
            }
            for (var i = 0; i < keys.Length; i++) // one table, or a kernel without batch updates here
            {
                BpfException.ThrowIfNegative(Libbpf.MapUpdateElem(outerFd, k + i, v + i, 0), $"swap in Maglev table of service {keys[i]}");
            }
        }
    }

    public static void Remove(int outerFd, uint serviceId)
    {
        var rc = Libbpf.MapDeleteElem(outerFd, &serviceId);
        if (rc < 0 && rc != -2)
        {
            throw new BpfException($"remove Maglev table of service {serviceId}", -rc);
        }
    }

    /// <summary>The kernel's size of a service's table map in entries (M + 1), 0 if it has none.</summary>
    public static uint Entries(int outerFd, uint serviceId)
    {
        uint mapId;
        if (Libbpf.MapLookupElem(outerFd, &serviceId, &mapId) < 0)
        {
            return 0;
        }
        using var table = new FileDescriptorHandle(BpfException.ThrowIfNegative(Libbpf.MapGetFdById(mapId), $"open Maglev table {mapId}"));
        return MapInfo.MaxEntries(table.Fd, $"Maglev table of service {serviceId}");
    }

    /// <summary>Reads back a service's table: the backend ids of slots 1..M (empty if none).</summary>
    public static uint[] Read(int outerFd, uint serviceId)
    {
        uint mapId;
        if (Libbpf.MapLookupElem(outerFd, &serviceId, &mapId) < 0)
        {
            return [];
        }
        using var table = new FileDescriptorHandle(BpfException.ThrowIfNegative(Libbpf.MapGetFdById(mapId), $"open Maglev table {mapId}"));
        uint slot = 0, size;
        BpfException.ThrowIfNegative(Libbpf.MapLookupElem(table.Fd, &slot, &size), "read Maglev table size");
        var result = new uint[size];
        for (slot = 1; slot <= size; slot++)
        {
            uint id;
            BpfException.ThrowIfNegative(Libbpf.MapLookupElem(table.Fd, &slot, &id), "read Maglev slot");
            result[slot - 1] = id;
        }
        return result;
    }
}
