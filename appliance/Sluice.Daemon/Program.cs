using Sluice.Daemon.Connections;
using System.Net;
using Sluice.Daemon;
using Sluice.Daemon.Api;
using Prometheus;
using Sluice.Daemon.Datapath;
using Sluice.Daemon.Drain;
using Sluice.Daemon.Events;
using Sluice.Daemon.Health;
using Sluice.Daemon.Metrics;
using Sluice.Daemon.Hosting;
using Sluice.Daemon.Reconciling;
using Sluice.Datapath.Loading;
using Sluice.Model.Configuration;
using Sluice.Model.State;

DaemonArguments arguments;
try
{
    arguments = DaemonArguments.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine($"sluiced: {ex.Message}");
    return 2;
}

var loaded = ConfigLoader.Load(arguments.ConfigPath);
if (!loaded.IsValid)
{
    Console.Error.WriteLine($"sluiced: {arguments.ConfigPath} is invalid:");
    foreach (var error in loaded.Errors)
    {
        Console.Error.WriteLine($"  {error}");
    }
    return 1;
}
var config = loaded.Config!;
if (arguments.CheckConfig)
{
    Console.WriteLine($"{arguments.ConfigPath}: valid; {config.Services.Count} service(s), " +
        $"{config.Services.Values.Sum(s => s.Backends.Count)} backend(s), interfaces {string.Join(",", config.Datapath.Interfaces!)}, " +
        $"API on {config.Api.Listen}");
    return 0;
}
if (arguments.RemoveDatapath)
{
    // Run in the namespace that holds the interfaces. Unpin only once every detach worked:
    // pins removed under a still-attached program would leave it unmanageable.
    foreach (var name in config.Datapath.Interfaces!)
    {
        try
        {
            XdpDatapath.Detach(name);
            Console.WriteLine($"detached XDP from {name}");
        }
        catch (Exception ex) when (ex is DatapathException or Sluice.Datapath.Interop.BpfException)
        {
            Console.Error.WriteLine($"sluiced: {ex.Message}; pinned maps left in place");
            return 1;
        }
    }
    XdpDatapath.Unpin(config.Datapath.PinPath);
    Console.WriteLine($"removed pinned maps at {config.Datapath.PinPath}");
    return 0;
}

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
builder.Host.UseSystemd();
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
builder.Services.ConfigureHttpJsonOptions(json =>
{
    json.SerializerOptions.PropertyNamingPolicy = ModelJson.Options.PropertyNamingPolicy;
    json.SerializerOptions.DefaultIgnoreCondition = ModelJson.Options.DefaultIgnoreCondition;
});
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.Listen(IPEndPoint.Parse(config.Api.Listen));
    kestrel.Listen(IPEndPoint.Parse(config.Metrics.Listen));
    kestrel.Limits.MaxRequestBodySize = config.Api.MaxRequestBytes;
    kestrel.AddServerHeader = false;
});
builder.Services.AddProblemDetails();
builder.Services.AddExceptionHandler<DatapathErrorHandler>();
builder.Services.AddOpenApi();
builder.Services.AddSingleton(new ConfigSource(arguments.ConfigPath, config));
builder.Services.AddSingleton(new ApiStateStore(config.StateDirectory));
builder.Services.AddSingleton(ApiToken.LoadOrCreate(config.Api.TokenFile));
builder.Services.AddSingleton<BearerTokenFilter>();
builder.Services.AddSingleton<Reconciler>();
builder.Services.AddSingleton<Sluice.Datapath.Neighbours.NextHopKeeper>();
builder.Services.AddHostedService<Sluice.Daemon.NextHops.NextHopMonitor>();
builder.Services.AddSingleton<DatapathHost>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<DatapathHost>());
builder.Services.AddSingleton<ReloadOnSighup>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<ReloadOnSighup>());
builder.Services.AddHostedService<WatchdogService>();
builder.Services.AddSingleton<EventLog>();
builder.Services.AddSingleton<HealthRegistry>();
builder.Services.AddSingleton<SluiceMetrics>();
builder.Services.AddSingleton<DatapathCollector>();
builder.Services.AddSingleton<ServiceViewBuilder>();
builder.Services.AddHostedService<HealthChecker>();
builder.Services.AddHostedService<DrainMonitor>();
builder.Services.AddSingleton<ConnectionTracking>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<ConnectionTracking>());

var app = builder.Build();
var metrics = app.Services.GetRequiredService<SluiceMetrics>();
var collector = app.Services.GetRequiredService<DatapathCollector>();
metrics.Registry.AddBeforeCollectCallback(collector.Collect);
app.UseExceptionHandler();
app.Use(ApiRequestCounting.Middleware(metrics));
app.UseStatusCodePages();
app.MapOpenApi();
app.MapGet("/healthz", () => Results.Ok("ok")).ExcludeFromDescription();
app.MapGet("/readyz", (DatapathHost host) => host.Health() is (true, _)
    ? Results.Ok("ready")
    : Results.Problem(statusCode: 503, title: "Not ready", detail: host.Health().Detail)).ExcludeFromDescription();
var api = app.MapGroup("/api/v1").AddEndpointFilter<BearerTokenFilter>();
api.MapServiceEndpoints();
api.MapStatusEndpoints();
api.MapObservabilityEndpoints();
api.RequireHost($"*:{IPEndPoint.Parse(config.Api.Listen).Port}");
app.MapMetrics("/metrics", metrics.Registry).RequireHost($"*:{IPEndPoint.Parse(config.Metrics.Listen).Port}");

try
{
    await app.RunAsync();
    return 0;
}
catch (Exception ex) when (ex is DatapathException or StateFileException or InvalidOperationException or Sluice.Datapath.Interop.BpfException)
{
    app.Logger.LogCritical("sluiced cannot start: {Reason}", ex.Message);
    return 1;
}
