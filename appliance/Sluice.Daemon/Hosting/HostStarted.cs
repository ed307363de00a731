namespace Sluice.Daemon.Hosting;

/// <summary>Background work that must not begin before the host is up (and READY=1 sent).</summary>
public static class HostStarted
{
    /// <summary>
    /// Completes when ApplicationStarted fires; false if the host stops first. The systemd
    /// lifetime sends READY=1 from the same event, so the continuation runs asynchronously.
    /// </summary>
    public static async Task<bool> Wait(IHostApplicationLifetime lifetime, CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (stoppingToken.Register(() => started.TrySetCanceled()))
        {
            try
            {
                await started.Task;
                return true;
            }
            catch (TaskCanceledException)
            {
                return false;
            }
        }
    }
}
