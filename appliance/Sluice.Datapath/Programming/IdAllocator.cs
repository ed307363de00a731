namespace Sluice.Datapath.Programming;

/// <summary>
/// Hands out ids 0..capacity-1. A released id is reused only after every never-used
/// id is gone, and then oldest-released first, so a stale flow that still names a
/// released id is unlikely to meet a new owner of it.
/// </summary>
public sealed class IdAllocator
{
    private readonly uint capacity;
    private readonly string what;
    private readonly HashSet<uint> used = [];
    private readonly Queue<uint> released = new();
    private uint next;

    public IdAllocator(uint capacity, string what = "ids")
    {
        this.capacity = capacity;
        this.what = what;
    }

    public int InUse => used.Count;

    public uint Allocate()
    {
        while (next < capacity)
        {
            var candidate = next++;
            if (used.Add(candidate))
            {
                return candidate;
            }
        }
        while (released.TryDequeue(out var id))
        {
            if (used.Add(id))
            {
                return id;
            }
        }
        throw new DatapathFullException($"all {capacity} {what} are in use");
    }

    /// <summary>Marks an id as taken (adopting state from pinned maps).</summary>
    public void Claim(uint id)
    {
        if (id >= capacity || !used.Add(id))
        {
            throw new InvalidOperationException($"id {id} cannot be claimed");
        }
    }

    public void Release(uint id)
    {
        if (used.Remove(id))
        {
            released.Enqueue(id);
        }
    }
}
