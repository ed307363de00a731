using System.Runtime.InteropServices;
using Sluice.Daemon.Reconciling;
using Sluice.Model.Services;

namespace Sluice.Daemon.Hosting;

/// <summary>
/// SIGHUP re-reads the config file. An invalid file, or one that clashes with API-owned
/// services, is logged with every error and the running state stays as it is.
/// Datapath settings (interfaces, sizes) take effect at the next start.
/// </summary>
public sealed partial class ReloadOnSighup(ConfigSource config, Reconciler reconciler, Events.EventLog events, ILogger<ReloadOnSighup> logger) : IHostedService, IDisposable
{
    private PosixSignalRegistration? registration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        registration = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            Reload();
        });
        return Task.CompletedTask;
    }

    public void Reload()
    {
        var result = config.Read();
        if (!result.IsValid)
        {
            Log.Invalid(logger, config.Path, string.Join("; ", result.Errors));
            events.Add("config", $"reload refused, running state kept: {string.Join("; ", result.Errors)}");
            return;
        }
        var loaded = result.Config!;
        try
        {
            var (_, plan, conflicts) = reconciler.Change(state =>
            {
                var (next, clashes) = state.ReplaceOwner(Owner.Config, loaded.Services);
                return (clashes.Count > 0 ? null : next, clashes);
            });
            if (conflicts.Count > 0)
            {
                Log.Invalid(logger, config.Path, string.Join("; ", conflicts.Select(c => c.Message)));
                events.Add("config", $"reload refused, running state kept: {string.Join("; ", conflicts.Select(c => c.Message))}");
                return;
            }
            config.Accept(loaded);
            Log.Reloaded(logger, config.Path, plan.Upserts.Count, plan.Removals.Count);
            events.Add("config", $"reloaded {config.Path}: {plan.Upserts.Count} service(s) programmed, {plan.Removals.Count} removed");
        }
        catch (Exception ex)
        {
            Log.Failed(logger, config.Path, ex.Message);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => registration?.Dispose();

    private static partial class Log
    {
        [LoggerMessage(500, LogLevel.Error, "config reload refused, running state kept: {Path}: {Errors}")]
        public static partial void Invalid(ILogger logger, string path, string errors);

        [LoggerMessage(501, LogLevel.Information, "config reloaded from {Path}: {Upserts} service(s) programmed, {Removals} removed")]
        public static partial void Reloaded(ILogger logger, string path, int upserts, int removals);

        [LoggerMessage(502, LogLevel.Error, "config reload failed, running state kept: {Path}: {Error}")]
        public static partial void Failed(ILogger logger, string path, string error);
    }
}
