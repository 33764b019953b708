// @ts-check
/**
 * A TypeDoc plugin for `npm run docs`: every export of every entry point must say when it came
 * (`@since`), where it belongs (`@category`) and show itself in use (`@example`); each module
 * needs `@since`. A missing tag is an error, so the docs build fails naming the export. It also
 * leaves out of the error classes what they inherit from effect.
 */
import { Converter, ReflectionKind } from "typedoc"

/** What an error class keeps of what it inherits from effect's `Schema.TaggedError`. */
const inheritedKept = new Set(["constructor", "_tag"])

/** @param {import("typedoc").Application} app */
export const load = (app) => {
  // an error class shows its own fields, `_tag`, its constructor and `message`, not the Schema
  // and Error machinery it inherits from effect (documented there)
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const reflection of context.project.getReflectionsByKind(ReflectionKind.Class)) {
      for (const child of [...(/** @type {import("typedoc").DeclarationReflection} */ (reflection).children ?? [])]) {
        if (child.flags.isExternal && child.inheritedFrom !== undefined && !inheritedKept.has(child.name)) {
          context.project.removeReflection(child)
        }
      }
    }
  })
  app.converter.on(Converter.EVENT_RESOLVE_END, (context) => {
    const project = context.project
    /** @param {import("typedoc").Reflection} reflection */
    const tags = (reflection) => {
      const comment = reflection.comment ??
        ("signatures" in reflection && Array.isArray(reflection.signatures) ? reflection.signatures[0]?.comment : undefined)
      return new Set(comment?.blockTags.map((tag) => tag.tag) ?? [])
    }
    for (const module of project.getReflectionsByKind(ReflectionKind.Module)) {
      if (!tags(module).has("@since")) app.logger.error(`${module.getFullName()}: the module comment has no @since`)
    }
    const exported = ReflectionKind.Variable | ReflectionKind.Function | ReflectionKind.Class |
      ReflectionKind.Interface | ReflectionKind.TypeAlias | ReflectionKind.Namespace
    for (const reflection of project.getReflectionsByKind(exported)) {
      const has = tags(reflection)
      const missing = ["@since", "@category", "@example"].filter((tag) => !has.has(tag))
      if (missing.length > 0) app.logger.error(`${reflection.getFullName()}: no ${missing.join(", ")}`)
    }
  })
}
