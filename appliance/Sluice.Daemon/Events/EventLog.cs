namespace Sluice.Daemon.Events;

/// <summary>One thing that happened: a health transition, a config change, a datapath event, a drain.</summary>
public sealed record SluiceEvent(DateTimeOffset Time, string Kind, string Message, string? Service = null, string? Backend = null);

/// <summary>The most recent events, newest last; bounded so it never grows.</summary>
public sealed class EventLog
{
    public const int Capacity = 1000;
    private readonly Queue<SluiceEvent> events = new();
    private readonly Lock gate = new();

    public void Add(string kind, string message, string? service = null, string? backend = null)
    {
        lock (gate)
        {
            if (events.Count == Capacity)
            {
                events.Dequeue();
            }
            events.Enqueue(new SluiceEvent(DateTimeOffset.UtcNow, kind, message, service, backend));
        }
    }

    public IReadOnlyList<SluiceEvent> Recent(int limit, string? kind = null)
    {
        lock (gate)
        {
            var matching = events.Where(e => kind is null || e.Kind == kind).ToList();
            return matching.Skip(Math.Max(0, matching.Count - limit)).ToList();
        }
    }
}
