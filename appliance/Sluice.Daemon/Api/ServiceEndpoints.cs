using Microsoft.Extensions.Primitives;
using Microsoft.AspNetCore.Http.HttpResults;
using Sluice.Daemon.Events;
using Sluice.Daemon.Hosting;
using Sluice.Daemon.Reconciling;
using Sluice.Model.Services;
using Sluice.Model.State;
using Sluice.Model.Validation;

namespace Sluice.Daemon.Api;

/// <summary>/api/v1/services: list, get, create-or-replace, delete, and single backends.</summary>
public static class ServiceEndpoints
{
    public static RouteGroupBuilder MapServiceEndpoints(this RouteGroupBuilder api)
    {
        var services = api.MapGroup("/services").WithTags("services");
        services.MapGet("/", List).Produces<ServiceList>();
        services.MapGet("/{name}", Get).Produces<ServiceView>().ProducesProblem(404);
        services.MapPut("/{name}", Put).Accepts<ServiceDefinition>("application/json").Produces<ServiceView>().Produces<ServiceView>(201)
            .Produces<DryRunResult>().ProducesValidationProblem().ProducesProblem(409).ProducesProblem(412).ProducesProblem(413).ProducesProblem(507);
        services.MapDelete("/{name}", Delete).Produces(204).ProducesProblem(404).ProducesProblem(409).ProducesProblem(412);
        services.MapPut("/{name}/backends/{backend}", PutBackend).Accepts<BackendPatch>("application/json").Produces<ServiceView>()
            .ProducesValidationProblem().ProducesProblem(404).ProducesProblem(409);
        services.MapDelete("/{name}/backends/{backend}", DeleteBackend).Produces(204).ProducesProblem(404).ProducesProblem(409);
        return api;
    }

    public static IResult List(Reconciler reconciler, ServiceViewBuilder views) =>
        Results.Ok(new ServiceList(views.BuildAll(reconciler.Current.Services.Values.ToList())));

    public static IResult Get(string name, HttpResponse response, Reconciler reconciler, ServiceViewBuilder views)
    {
        if (!reconciler.Current.Services.TryGetValue(name, out var service))
        {
            return NotFound(name);
        }
        response.Headers.ETag = service.ETag;
        return Results.Ok(views.Build(service));
    }

    public static async Task<IResult> Put(string name, bool? dryRun, HttpRequest request, Reconciler reconciler, ConfigSource config)
    {
        var (definition, error) = await RequestBody.Read<ServiceDefinition>(request);
        if (error is not null)
        {
            return error;
        }
        return Write(name, definition!, request, reconciler, config, dryRun ?? false);
    }

    public static IResult Delete(string name, HttpRequest request, Reconciler reconciler)
    {
        var (_, _, outcome) = reconciler.Change(state =>
        {
            if (Precondition(state, name, request.Headers.IfMatch) is { } failed) return (null, failed);
            var (next, kind, conflict) = state.Remove(name, Owner.Api);
            if (conflict is not null) return (null, Conflict(conflict.Message));
            return kind is null ? (null, NotFound(name)) : (next, Results.NoContent());
        });
        if (outcome is NoContent)
        {
            request.HttpContext.RequestServices.GetRequiredService<EventLog>().Add("api", $"service {name} deleted", name);
        }
        return outcome;
    }

    public static async Task<IResult> PutBackend(string name, string backend, HttpRequest request, Reconciler reconciler, ConfigSource config)
    {
        if (ParseBackend(backend) is not var (address, port))
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["backend"] = [$"\"{backend}\" is not address:port"] });
        }
        var (patch, error) = await RequestBody.Read<BackendPatch>(request);
        if (error is not null)
        {
            return error;
        }
        if (!reconciler.Current.Services.TryGetValue(name, out var service))
        {
            return NotFound(name);
        }
        var backends = service.Definition.Backends.ToList();
        var index = backends.FindIndex(b => b.Address == address && b.Port == port);
        var existing = index >= 0 ? backends[index] : new BackendDefinition { Address = address, Port = port };
        var updated = existing with { Weight = patch!.Weight ?? existing.Weight, State = patch.State ?? existing.State };
        if (index >= 0) backends[index] = updated; else backends.Add(updated);
        return Write(name, service.Definition with { Backends = backends }, request, reconciler, config, dryRun: false);
    }

    public static IResult DeleteBackend(string name, string backend, HttpRequest request, Reconciler reconciler, ConfigSource config)
    {
        if (ParseBackend(backend) is not var (address, port))
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["backend"] = [$"\"{backend}\" is not address:port"] });
        }
        if (!reconciler.Current.Services.TryGetValue(name, out var service))
        {
            return NotFound(name);
        }
        var backends = service.Definition.Backends.Where(b => !(b.Address == address && b.Port == port)).ToList();
        if (backends.Count == service.Definition.Backends.Count)
        {
            return Results.Problem(statusCode: 404, title: "Not Found", detail: $"service {name} has no backend {address}:{port}");
        }
        var result = Write(name, service.Definition with { Backends = backends }, request, reconciler, config, dryRun: false);
        return result is IStatusCodeHttpResult { StatusCode: 200 or 201 } ? Results.NoContent() : result;
    }

    /// <summary>Validates and applies (or dry-runs) a full service definition for the API owner.</summary>
    private static IResult Write(string name, ServiceDefinition definition, HttpRequest request, Reconciler reconciler, ConfigSource config, bool dryRun)
    {
        var errors = new ValidationErrors();
        ServiceValidator.ValidateName(name, "name", errors);
        ServiceValidator.Validate(definition, "", errors);
        if (definition.Mode == "fullnat" && config.Current.Datapath.SnatAddresses.Count == 0)
        {
            errors.Add("mode", "fullnat needs at least one address in datapath.snatAddresses of the daemon's config");
        }
        if (errors.Any)
        {
            return Results.ValidationProblem(errors.All.GroupBy(e => e.Path).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray()));
        }

        var (_, _, outcome) = reconciler.Change(state =>
        {
            if (Precondition(state, name, request.Headers.IfMatch) is { } failed) return (null, (Refusal: failed, Kind: ChangeKind.Unchanged));
            var (next, kind, conflict) = state.Put(name, definition, Owner.Api);
            if (conflict is not null) return (null, (Refusal: Conflict(conflict.Message), Kind: kind));
            return (kind == ChangeKind.Unchanged ? null : next, (Refusal: (IResult?)null, Kind: kind));
        }, dryRun);

        if (outcome.Refusal is not null)
        {
            return outcome.Refusal;
        }
        if (dryRun)
        {
            return Results.Ok(new DryRunResult(true, outcome.Kind.ToString().ToLowerInvariant(), name, definition, ModelJson.ETag(definition)));
        }
        var service = reconciler.Current.Services[name];
        if (outcome.Kind != ChangeKind.Unchanged)
        {
            request.HttpContext.RequestServices.GetRequiredService<EventLog>()
                .Add("api", $"service {name} {outcome.Kind.ToString().ToLowerInvariant()} ({service.Endpoint}, {service.Definition.Backends.Count} backend(s))", name);
        }
        request.HttpContext.Response.Headers.ETag = service.ETag;
        var view = request.HttpContext.RequestServices.GetRequiredService<ServiceViewBuilder>().Build(service);
        return outcome.Kind == ChangeKind.Created ? Results.Created($"/api/v1/services/{name}", view) : Results.Ok(view);
    }

    /// <summary>If-Match: "*" needs the service to exist; a list of tags needs its current tag among them.</summary>
    private static IResult? Precondition(DesiredState state, string name, StringValues ifMatch)
    {
        if (StringValues.IsNullOrEmpty(ifMatch))
        {
            return null;
        }
        var tags = ifMatch.SelectMany(v => v!.Split(',')).Select(t => t.Trim()).ToList();
        var exists = state.Services.TryGetValue(name, out var service);
        var matches = exists && (tags.Contains("*") || tags.Contains(service!.ETag));
        return matches ? null : Results.Problem(statusCode: 412, title: "Precondition Failed",
            detail: exists ? $"service {name} has ETag {service!.ETag}, not {ifMatch}" : $"service {name} does not exist");
    }

    private static IResult NotFound(string name) =>
        Results.Problem(statusCode: 404, title: "Not Found", detail: $"no service named {name}");

    private static IResult Conflict(string message) =>
        Results.Problem(statusCode: 409, title: "Conflict", detail: message);

    private static (string Address, int Port)? ParseBackend(string text)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text[(colon + 1)..], out var port) || port is < 1 or > 65535 || !ServiceValidator.IsIPv4(text[..colon]))
        {
            return null;
        }
        return (text[..colon], port);
    }
}
