// When each custodian was last heard from, by a message it signed (heartbeats, approvals, signing
// messages). Reported by /api/v1/health. Memory only: a restarted coordinator starts blank.
export interface Contact {
  at: string;
  via: string;
}

export class CustodianContacts {
  readonly #last = new Map<string, Contact>();
  constructor(private readonly roster: string[]) {}

  seen(name: string, via: string): void {
    if (this.roster.includes(name)) this.#last.set(name, { at: new Date().toISOString(), via });
  }

  report(
    now = Date.now(),
  ): { name: string; lastContact: string | null; secondsAgo: number | null; via: string | null }[] {
    return this.roster.map((name) => {
      const c = this.#last.get(name);
      return {
        name,
        lastContact: c?.at ?? null,
        secondsAgo: c ? Math.round((now - Date.parse(c.at)) / 1000) : null,
        via: c?.via ?? null,
      };
    });
  }
}
