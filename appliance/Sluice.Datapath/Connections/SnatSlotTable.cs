using System.Runtime.InteropServices;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Balancing;
using Sluice.Datapath.Interop;
using Sluice.Datapath.Loading;
using static Tmds.Linux.LibC;

namespace Sluice.Datapath.Connections;

/// <summary>
/// The reverse halves (sluice_snat_v5), mapped into this process: a reply tuple lives only in
/// the pair of slots its hash names (bpf/lib/snat.h), so a read is a memory read. A free is two
/// compare-and-swaps of the slot's owner: from the connection's creation time to RETIRED (so it
/// can never free a newer connection that took the slot since), and a sweep later from RETIRED
/// to 0 (so a CPU that still held the slot when it was retired cannot write into the next
/// connection's). Reads copy a slot and check its owner again after the copy.
/// </summary>
public sealed unsafe class SnatSlotTable : IDisposable
{
    private readonly SnatSlot* slots;
    private readonly nuint length;
    private bool disposed;

    public SnatSlotTable(string name, int mapFd)
    {
        Name = name;
        Slots = MapInfo.MaxEntries(mapFd, name);
        if (Slots == 0 || (Slots & (Slots - 1)) != 0)
        {
            throw new DatapathException($"{name} has {Slots} slots, not a power of two");
        }
        length = (nuint)Slots * (nuint)sizeof(SnatSlot);
        var address = mmap(null, (Tmds.Linux.size_t)length, PROT_READ | PROT_WRITE, MAP_SHARED, mapFd, 0);
        if (address == MAP_FAILED)
        {
            throw new BpfException($"mmap {name}", errno);
        }
        slots = (SnatSlot*)address;
    }

    public string Name { get; }

    public uint Slots { get; }

    /// <summary>Slots for a table that holds @connections fullnat connections: twice as many,
    /// rounded up to a power of two, so a claim seldom finds its slot taken by another tuple.</summary>
    public static uint SlotsFor(uint connections) => (uint)Math.Min(1UL << 31, 2 * System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)Math.Max(1, connections)));

    /// <summary>snat_pair_index of bpf/lib/snat.h: the first of the two slots a reply tuple may live in.</summary>
    public static uint PairOf(Tuple5 reply, uint slots) => FlowHash.Of(reply, sourceAffinity: false, SnatSlot.IndexSeed) & (slots - 1) & ~1u;

    /// <summary>Every live reverse half with its reply tuple.</summary>
    public List<KeyValuePair<Tuple5, NatEntry>> ReadAll()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var live = new List<KeyValuePair<Tuple5, NatEntry>>();
        for (uint i = 0; i < Slots; i++)
        {
            if (IsLive(Volatile.Read(ref slots[i].Owner)) && TryRead(i, out var slot))
            {
                live.Add(new(slot.Key, slot.ToEntry()));
            }
        }
        return live;
    }

    public List<KeyValuePair<Tuple5, NatEntry>> Entries() => ReadAll();

    public List<Tuple5> Keys() => ReadAll().Select(e => e.Key).ToList();

    public int Count()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var count = 0;
        for (uint i = 0; i < Slots; i++)
        {
            count += IsLive(Volatile.Read(ref slots[i].Owner)) ? 1 : 0;
        }
        return count;
    }

    /// <summary>The live reverse half under @reply.</summary>
    public bool TryLookup(Tuple5 reply, out NatEntry entry)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        entry = default;
        if (!TryFind(reply, out _, out var slot))
        {
            return false;
        }
        entry = slot.ToEntry();
        return true;
    }

    /// <summary>Retires the slot of @reply if it still holds the connection created at @createdNs:
    /// dead from now on, free once <see cref="Free"/> is called for @index a sweep later.</summary>
    public bool TryRetire(Tuple5 reply, ulong createdNs, out uint index)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (!TryFind(reply, out index, out var slot) || slot.Owner != createdNs)
        {
            return false;
        }
        return Interlocked.CompareExchange(ref slots[index].Owner, SnatSlot.Retired, createdNs) == createdNs;
    }

    /// <summary>Frees a slot retired at least one sweep ago.</summary>
    public bool Free(uint index)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        return index < Slots && Interlocked.CompareExchange(ref slots[index].Owner, 0, SnatSlot.Retired) == SnatSlot.Retired;
    }

    /// <summary>Slots retired now (left by an earlier sweeper, or this one).</summary>
    public List<uint> Retired()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var retired = new List<uint>();
        for (uint i = 0; i < Slots; i++)
        {
            if (Volatile.Read(ref slots[i].Owner) == SnatSlot.Retired)
            {
                retired.Add(i);
            }
        }
        return retired;
    }

    private static bool IsLive(ulong owner) => owner is not 0 and < SnatSlot.Retired;

    /// <summary>Frees every slot. Only for a datapath no packet reaches (benchmarks, tests).</summary>
    public void Clear()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        for (uint i = 0; i < Slots; i++)
        {
            Volatile.Write(ref slots[i].Owner, 0);
        }
    }

    private bool TryFind(Tuple5 reply, out uint index, out SnatSlot slot)
    {
        var pair = PairOf(reply, Slots);
        for (index = pair; index <= pair + 1; index++)
        {
            if (TryRead(index, out slot) && slot.Key == reply)
            {
                return true;
            }
        }
        slot = default;
        return false;
    }

    /// <summary>A consistent copy of a live slot: its owner unchanged across the copy.</summary>
    private bool TryRead(uint index, out SnatSlot slot)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var owner = Volatile.Read(ref slots[index].Owner);
            if (!IsLive(owner))
            {
                break;
            }
            slot = slots[index];
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref slots[index].Owner) == owner)
            {
                slot.Owner = owner;
                return true;
            }
        }
        slot = default;
        return false;
    }

    public void Dispose()
    {
        if (!disposed)
        {
            disposed = true;
            munmap(slots, (Tmds.Linux.size_t)length);
        }
    }
}
