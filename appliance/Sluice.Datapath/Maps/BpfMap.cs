using System.Runtime.InteropServices;
using Sluice.Datapath.Interop;

namespace Sluice.Datapath.Maps;

/// <summary>
/// Typed access to one BPF map. The fd is borrowed from the loaded object (or owned,
/// when the map was opened from a pin); keys and values are the ABI mirrors.
/// </summary>
public sealed unsafe class BpfMap<TKey, TValue>
    where TKey : unmanaged
    where TValue : unmanaged
{
    private const int ENOENT = 2;
    private const int EEXIST = 17;
    private const int ENOSPC = 28;
    private const ulong BPF_ANY = 0;
    private const ulong BPF_NOEXIST = 1;

    public BpfMap(string name, int fd)
    {
        Name = name;
        Fd = fd;
    }

    public string Name { get; }

    public int Fd { get; }

    public bool TryLookup(TKey key, out TValue value)
    {
        TValue result;
        var rc = Libbpf.MapLookupElem(Fd, &key, &result);
        if (rc < 0)
        {
            value = default;
            return -rc == ENOENT ? false : throw new BpfException($"lookup in {Name}", -rc);
        }
        value = result;
        return true;
    }

    public void Update(TKey key, TValue value)
    {
        BpfException.ThrowIfNegative(Libbpf.MapUpdateElem(Fd, &key, &value, BPF_ANY), $"update of {Name}");
    }

    /// <summary>Inserts only if the key is absent; false if it exists.</summary>
    public bool TryInsert(TKey key, TValue value)
    {
        var rc = Libbpf.MapUpdateElem(Fd, &key, &value, BPF_NOEXIST);
        return rc >= 0 || (-rc == EEXIST ? false : throw new BpfException($"insert into {Name}", -rc));
    }

    /// <summary>Deletes the key; false if it was absent.</summary>
    public bool Delete(TKey key)
    {
        var rc = Libbpf.MapDeleteElem(Fd, &key);
        return rc >= 0 || (-rc == ENOENT ? false : throw new BpfException($"delete from {Name}", -rc));
    }

    /// <summary>Deletes the key and returns the value it held at that moment; false if absent.</summary>
    public bool TryTake(TKey key, out TValue value)
    {
        TValue result;
        var rc = Libbpf.MapLookupAndDeleteElem(Fd, &key, &result);
        if (rc < 0)
        {
            value = default;
            return -rc == ENOENT ? false : throw new BpfException($"lookup-and-delete in {Name}", -rc);
        }
        value = result;
        return true;
    }

    /// <summary>
    /// Every entry, read with BPF_MAP_LOOKUP_BATCH: a hash map is walked bucket by bucket,
    /// each bucket read whole, so an entry present throughout is returned exactly once even
    /// while others come and go (get_next_key restarts from the first bucket when its
    /// current key is deleted, returning keys twice).
    /// </summary>
    public List<KeyValuePair<TKey, TValue>> ReadAll(int batchSize = 4096)
    {
        var entries = new List<KeyValuePair<TKey, TValue>>();
        var keys = new TKey[batchSize];
        var values = new TValue[batchSize];
        // The batch token is the map's own cursor (a u32 bucket index for hash maps, a key for arrays).
        var tokenSize = Math.Max(sizeof(TKey), sizeof(ulong));
        var token = stackalloc byte[tokenSize];
        var next = stackalloc byte[tokenSize];
        var started = false;
        while (true)
        {
            var count = (uint)keys.Length;
            int rc;
            fixed (TKey* keyBuffer = keys)
            fixed (TValue* valueBuffer = values)
            {
                rc = Libbpf.MapLookupBatch(Fd, started ? token : null, next, keyBuffer, valueBuffer, &count, 0);
            }
            if (rc < 0 && -rc == ENOSPC && count == 0)
            {
                // One bucket holds more than a batch: retry it with room to spare.
                keys = new TKey[keys.Length * 2];
                values = new TValue[values.Length * 2];
                continue;
            }
            if (rc < 0 && -rc != ENOENT)
            {
                throw new BpfException($"batch read of {Name}", -rc);
            }
            for (var i = 0; i < count; i++)
            {
                entries.Add(new(keys[i], values[i]));
            }
            if (rc < 0)
            {
                return entries; // ENOENT: the walk is complete
            }
            new Span<byte>(next, tokenSize).CopyTo(new Span<byte>(token, tokenSize));
            started = true;
        }
    }

    /// <summary>Deletes these keys with BPF_MAP_DELETE_BATCH. A key already gone ends the batch with an
    /// error: for maps nothing else deletes from meanwhile (a benchmark's reset), not for live tables.</summary>
    public void DeleteAll(IReadOnlyList<TKey> keys)
    {
        foreach (var chunk in keys.Chunk(4096))
        {
            var count = (uint)chunk.Length;
            fixed (TKey* keyBuffer = chunk)
            {
                BpfException.ThrowIfNegative(Libbpf.MapDeleteBatch(Fd, keyBuffer, &count, 0), $"batch delete from {Name}");
            }
        }
    }

    /// <summary>Every key, read with get_next_key; entries may change while iterating.</summary>
    public List<TKey> Keys()
    {
        var keys = new List<TKey>();
        TKey current = default;
        TKey next;
        var rc = Libbpf.MapGetNextKey(Fd, null, &next);
        while (rc >= 0)
        {
            keys.Add(next);
            current = next;
            rc = Libbpf.MapGetNextKey(Fd, &current, &next);
        }
        if (-rc != ENOENT)
        {
            throw new BpfException($"iteration of {Name}", -rc);
        }
        return keys;
    }

    public List<KeyValuePair<TKey, TValue>> Entries()
    {
        var entries = new List<KeyValuePair<TKey, TValue>>();
        foreach (var key in Keys())
        {
            if (TryLookup(key, out var value))
            {
                entries.Add(new(key, value));
            }
        }
        return entries;
    }

    /// <summary>Entries now, by a batch read (exact under churn, unlike a get_next_key walk).</summary>
    public int Count() => ReadAll().Count;

    internal static int SizeOf<T>() where T : unmanaged => Marshal.SizeOf<T>();
}
