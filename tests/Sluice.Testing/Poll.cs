namespace Sluice.Testing;

/// <summary>Bounded waits: poll a condition instead of sleeping, fail saying what never happened.</summary>
public static class Poll
{
    public static async Task Until(Func<bool> condition, string what, TimeSpan? within = null) =>
        await Until(() => Task.FromResult(condition()), what, within);

    public static async Task Until(Func<Task<bool>> condition, string what, TimeSpan? within = null)
    {
        var limit = within ?? TimeSpan.FromSeconds(20);
        var deadline = DateTime.UtcNow + limit;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return;
            }
            await Task.Delay(50);
        }
        Xunit.Assert.Fail($"{what}: not within {limit.TotalSeconds:F1} s");
    }
}
